# UnitCrowd: `make run` sets up and serves the demo; `make test` sets up and runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-requirements
HOST ?= 127.0.0.1
PORT ?= 8000
# Local runs are development runs unless the caller says otherwise.
export DEBUG ?= 1

.PHONY: venv run test demo migrate lint bench clean

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "UnitCrowd needs Python 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

migrate: venv
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py demo

run: demo
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo ""
	@echo "UnitCrowd is serving at http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	@echo "  requester/admin:  admin / unitcrowd-admin      -> http://$(HOST):$(PORT)/jobs/"
	@echo "  annotators:       annotator1..3 / unitcrowd-annotator -> http://$(HOST):$(PORT)/crowd/"
	@echo "  API docs:         http://$(HOST):$(PORT)/api/docs/"
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(BIN)/python -m tasks.engine bench

clean:
	rm -rf var/ .pytest_cache
