#!/usr/bin/env bash
# The load benchmark against the default embedded setup: SQLite, no broker (aggregation in a
# timer thread of the web process), `make run`'s server (Django's runserver, DEBUG=1), on its own
# database file so the demo's is left alone. Usage: benchmarks/embedded_loadtest.sh [loadtest options]
# The 16 annotators pause 1.4 s on average between claim and submit, as in `make soak` (`--think 0`: a closed
# loop, which saturates the one runserver process near 34 submissions/s, see README).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PORT=${EMBEDDED_PORT:-8020}
DB=${EMBEDDED_DB:-var/loadtest-embedded.sqlite3}
mkdir -p var
export DATABASE_URL="sqlite:///$(pwd)/$DB" DEBUG=1 CELERY_BROKER_URL=
export THROTTLE_TOKEN=100000/min THROTTLE_CLAIM=100000/min THROTTLE_SUBMIT=100000/min LOG_LEVEL=WARNING
"$BIN/python" manage.py migrate --noinput -v 0
"$BIN/python" manage.py runserver "127.0.0.1:$PORT" --noreload >var/loadtest-embedded.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.5; done
echo "$server" > var/loadtest-embedded.pid
"$BIN/python" -m benchmarks.loadtest --url "http://127.0.0.1:$PORT" --pidfile web=var/loadtest-embedded.pid \
  --annotators 16 --duration 60 --hits 1000 --assignments 5 --think 1.4 --check "$@"
