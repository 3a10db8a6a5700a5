# Cairn. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STACK := deploy/local/stack
PYTEST_ARGS ?=

CATALOG_CLIENT := tests/e2e/catalog_client
CATALOG_CLIENT_STAMP := $(CATALOG_CLIENT)/node_modules/.installed

.PHONY: help install up test test-unit test-fast lint format bench stack-up stack-down clean catalog-client

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@echo "make: creating $(VENV) and installing Cairn with its dev tools" >&2
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create the virtual environment and install Cairn

up: $(STAMP) ## run Cairn on its embedded default with demo repositories
	$(VENV)/bin/cairn up --demo $(UP_ARGS)

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP) ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test-unit: $(STAMP) ## unit tests only (no I/O): the inner loop
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

$(CATALOG_CLIENT_STAMP): $(CATALOG_CLIENT)/package.json $(CATALOG_CLIENT)/package-lock.json
	@echo "make: installing Backstage's @backstage/catalog-client for the e2e tests" >&2
	@cd $(CATALOG_CLIENT) && npm ci --no-audit --no-fund --loglevel=error
	@touch $(CATALOG_CLIENT_STAMP)

catalog-client: $(CATALOG_CLIENT_STAMP) ## install the Node catalog client the e2e tests drive

test: $(STAMP) $(CATALOG_CLIENT_STAMP) ## lint, start Kafka/OpenSearch/PostgreSQL, run every test, stop them
	@$(MAKE) --no-print-directory lint
	@bash tests/run_with_stack.sh $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP) ## run the benchmarks and print their figures
	$(PY) -m tests.benchmarks.freshness

stack-up: ## start Kafka, OpenSearch and PostgreSQL on loopback and print their settings
	@$(STACK) up

stack-down: ## stop them
	@$(STACK) down

clean: ## remove the virtual environment and local state
	rm -rf $(VENV) .cairn .pytest_cache .mypy_cache .ruff_cache
