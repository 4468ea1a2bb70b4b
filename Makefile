# UnitCrowd: `make run` sets up and serves the demo; `make test` sets up and runs the tests; `make lint` runs the gates.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-requirements
DEV_STAMP := $(VENV)/.installed-dev-requirements
HOST ?= 127.0.0.1
PORT ?= 8000
# Local runs are development runs unless the caller says otherwise.
export DEBUG ?= 1

.PHONY: venv lint run test test-fast demo migrate worker bench bench-paint bench-client gpu-check clean stack stack-down loadtest loadtest-faults loadtest-embedded soak

# The Python client (client/, its own package) is installed editable, so tests/client runs it as users would.
$(STAMP): requirements.txt client/pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "UnitCrowd needs Python 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet -e ./client
	touch $(STAMP)

venv: $(STAMP)

$(DEV_STAMP): requirements-dev.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(DEV_STAMP)

# The gates: ruff (rules and line length in pyproject.toml) over the tree, mypy over tasks/engine, annotate_site and the client.
lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

migrate: venv
	$(BIN)/python manage.py migrate --noinput

# Builds the demo once (a few minutes on a CPU); later runs reuse it and take seconds.
# The well-known passwords below exist only with DEBUG=1; with DEBUG=0 the demo prints generated ones.
demo: migrate
	$(BIN)/python manage.py demo

# Development settings for the `python manage.py ...` commands typed by hand (README): DEBUG=1 and a
# random SECRET_KEY, read by annotate_site/settings.py. Written once; an existing .env is kept.
.env:
	@printf '# Development settings written by make run, read by annotate_site/settings.py\n# (a variable set in the environment wins). Not for production.\nDEBUG=1\nSECRET_KEY=%s\n' \
		"$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@
	@echo "Wrote .env (DEBUG=1 and a random SECRET_KEY) for manage.py commands run by hand."

run: .env demo
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo ""
	@echo "UnitCrowd is serving at http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	@echo "  requester/admin:  admin / unitcrowd-admin               -> http://$(HOST):$(PORT)/jobs/"
	@echo "  annotators:       annotator1..3 / unitcrowd-annotator   -> http://$(HOST):$(PORT)/crowd/"
	@echo "  Django admin:     http://$(HOST):$(PORT)/admin/"
	@echo "  API docs:         http://$(HOST):$(PORT)/api/docs/"
	@echo ""
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Everything but the tests that need PostgreSQL, Redis, a worker or a browser, and the slow catalogue cases.
test-fast: venv
	$(BIN)/python -m pytest -m "not integration and not browser and not slow" $(PYTEST_ARGS)

# A Celery worker for both queues, for a local run with CELERY_BROKER_URL set.
worker: venv
	$(BIN)/celery -A annotate_site worker -Q gpu,default --concurrency 1 --loglevel INFO

# The benchmarks live in benchmarks/ (nothing of the product imports them); their figures in benchmarks/RESULTS.md.
# The engine: forward pass alone against a full dissection on a synthetic set.
BENCH_ARGS ?= --rounds 3
bench: venv
	$(BIN)/python -m benchmarks.engine_bench $(BENCH_ARGS)

# The engine on CUDA: the GPU-marked tests, then the bench on the GPU (needs a GPU).
gpu-check: venv
	PYTHON=$(BIN)/python benchmarks/gpu_check.sh

# The paint endpoint's work on a finished generator job: make bench-paint PAINT_ARGS="--job ID".
PAINT_ARGS ?= --help
bench-paint: venv
	$(BIN)/python -m benchmarks.paint_bench $(PAINT_ARGS)

# One 512-unit layer's labels in one call, raw HTTP against the Python client, on a server it starts itself.
bench-client: venv
	$(BIN)/python -m benchmarks.client_bench $(CLIENT_BENCH_ARGS)

# The load benchmark: `make stack` starts PostgreSQL, Redis, gunicorn (4 workers) and one
# Celery worker on this machine; `make loadtest` drives 64 simulated annotators for 90 s against it, the HITs
# spread over 3 projects, one of them a private pool.
STACK_PORT ?= 8011
STACK_DATABASE_URL ?= postgres://postgres:postgres@127.0.0.1:5432/unitcrowd_load
STACK_BROKER_URL ?= redis://127.0.0.1:6379/3
LOADTEST_ARGS ?= --annotators 64 --duration 90 --hits 1200 --assignments 5
stack: venv
	BIN=$(BIN) STACK_PORT=$(STACK_PORT) STACK_DATABASE_URL=$(STACK_DATABASE_URL) STACK_BROKER_URL=$(STACK_BROKER_URL) benchmarks/stack.sh up

stack-down:
	benchmarks/stack.sh down

loadtest: venv
	DEBUG=0 SECRET_KEY=loadtest-client DATABASE_URL=$(STACK_DATABASE_URL) CELERY_BROKER_URL=$(STACK_BROKER_URL) \
	  $(BIN)/python -m benchmarks.loadtest --url http://127.0.0.1:$(STACK_PORT) $(LOADTEST_ARGS) --check \
	  --pidfile web=var/stack/gunicorn.pid --pidfile worker=var/stack/celery.pid

# Fault mode: kill -9 a gunicorn worker and the Celery worker mid-run; then nothing lost or stuck, aggregation caught up.
loadtest-faults: venv
	$(MAKE) loadtest LOADTEST_ARGS="--annotators 64 --duration 60 --hits 512 --assignments 5 --faults --restart-worker 'benchmarks/stack.sh worker'"

# The same crowd (16 annotators) against the embedded setup: SQLite, no broker, runserver.
loadtest-embedded: venv
	BIN=$(BIN) benchmarks/embedded_loadtest.sh $(EMBEDDED_ARGS)

# Soak: 10 minutes at 64 annotators; the web and worker RSS are printed at the start and the end.
soak: venv
	$(MAKE) loadtest LOADTEST_ARGS="--annotators 64 --duration 600 --hits 6000 --assignments 5 --think 1.4"

clean:
	rm -rf var/ .pytest_cache
