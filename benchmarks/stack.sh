#!/usr/bin/env bash
# The production-shaped stack of the load benchmark on this machine: PostgreSQL and
# Redis from Debian's packages, gunicorn with 4 workers, one Celery worker for both queues,
# DEBUG=0. `benchmarks/stack.sh up` starts it (pid and log files in var/stack/), `down` stops it.
# Throttles (the THROTTLE_* variables) are set high: the benchmark measures the server.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
DIR=var/stack
PORT=${STACK_PORT:-8011}
export DATABASE_URL=${STACK_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/unitcrowd_load}
export CELERY_BROKER_URL=${STACK_BROKER_URL:-redis://127.0.0.1:6379/3}
export DEBUG=0
export SECRET_KEY=${SECRET_KEY:-stack-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')}
export THROTTLE_TOKEN=${THROTTLE_TOKEN:-100000/min} THROTTLE_CLAIM=${THROTTLE_CLAIM:-100000/min}
export THROTTLE_SUBMIT=${THROTTLE_SUBMIT:-100000/min}
export LOG_LEVEL=${LOG_LEVEL:-WARNING}

services() {
  if ! command -v pg_isready >/dev/null || ! command -v redis-server >/dev/null; then
    apt-get install -y -q --no-install-recommends postgresql redis-server >/dev/null
  fi
  if ! pg_isready -h 127.0.0.1 -q; then
    pg_version=$(ls /etc/postgresql | sort -V | tail -n 1)
    pg_ctlcluster "$pg_version" main start
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -q && break; sleep 1; done
  fi
  redis-cli -p 6379 ping >/dev/null 2>&1 || redis-server --daemonize yes --save "" --port 6379
  for _ in $(seq 1 30); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
  local db=${DATABASE_URL##*/}
  psql "${DATABASE_URL%/*}/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
    || psql "${DATABASE_URL%/*}/postgres" -qc "CREATE DATABASE \"$db\""
}

stop() {
  for name in gunicorn celery; do
    if [ -f "$DIR/$name.pid" ]; then
      pid=$(cat "$DIR/$name.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      rm -f "$DIR/$name.pid"
    fi
  done
}

# One Celery worker for both queues, with the periodic tasks (beat) embedded: reclaiming expired
# assignments and re-aggregating stale layers are part of what the benchmark's fault mode checks.
worker() {
  "$BIN/celery" -A annotate_site worker -Q gpu,default --concurrency 1 --detach -B \
    --schedule "$DIR/celerybeat-schedule" --pidfile "$DIR/celery.pid" --logfile "$DIR/celery.log" --loglevel WARNING
  for _ in $(seq 1 50); do [ -s "$DIR/celery.pid" ] && break; sleep 0.1; done
}

case "${1:-up}" in
  up)
    mkdir -p "$DIR"
    stop
    services
    "$BIN/python" manage.py migrate --noinput -v 0
    # Sync workers (gunicorn's default): one request per process at a time, new connections go to
    # whichever worker is free. gthread (4 threads each) was slower in the tail: a keep-alive connection
    # stays with its worker, so some queued behind busy ones (64 paced annotators: p99 claim 689 ms
    # gthread vs 556 ms sync at the same pace; STACK_WORKER_CLASS=gthread STACK_THREADS=4 to compare).
    "$BIN/gunicorn" annotate_site.wsgi --workers "${STACK_WORKERS:-4}" --worker-class "${STACK_WORKER_CLASS:-sync}" \
      --threads "${STACK_THREADS:-1}" --bind "127.0.0.1:$PORT" --keep-alive 75 --daemon \
      --pid "$DIR/gunicorn.pid" --error-logfile "$DIR/gunicorn.log" --timeout 60
    worker
    for _ in $(seq 1 60); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.5; done
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null || { echo "gunicorn did not answer; see $DIR/gunicorn.log"; exit 1; }
    echo "stack up: http://127.0.0.1:$PORT/ (DATABASE_URL=$DATABASE_URL, broker $CELERY_BROKER_URL); logs in $DIR/"
    ;;
  worker) mkdir -p "$DIR"; worker ;;  # (re)start the worker alone, e.g. after loadtest --faults killed it
  down) stop; echo "stack down" ;;
  *) echo "usage: $0 up|worker|down"; exit 2 ;;
esac
