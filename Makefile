# The front door. `make dev` and `make test` need only Python 3.12+: servers that
# the environment does not name are started from PyPI wheels (docs/dev-stack.md).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQUIREMENTS := $(wildcard requirements/*.txt)
# Candidates for the interpreter that makes .venv, first that is 3.12 or newer wins.
# Override: make install PYTHON=/path/to/python3.12
PYTHON_CANDIDATES := python3.13 python3.12 python3
PYTEST_ARGS ?=

.PHONY: help install dev test lint check-deploy dev-reset

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'
	@echo "  make test PYTEST_ARGS='-k cancel -x'   pass arguments to pytest"

install: $(STAMP) ## Create .venv and install requirements/dev.txt (again only when requirements change)

$(PY):
	@set -e; \
	py="$(PYTHON)"; \
	if [ -z "$$py" ]; then \
	  for candidate in $(PYTHON_CANDIDATES); do \
	    if command -v "$$candidate" >/dev/null 2>&1 && \
	       "$$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then \
	      py="$$candidate"; break; \
	    fi; \
	  done; \
	fi; \
	if [ -z "$$py" ]; then \
	  echo "error: no Python 3.12 or newer found (tried: $(PYTHON_CANDIDATES))." >&2; \
	  echo "       Install one, or name it: make install PYTHON=/path/to/python3.12" >&2; \
	  exit 1; \
	fi; \
	echo "==> Creating $(VENV) with $$py ($$("$$py" -c 'import sys; print(sys.version.split()[0])'))"; \
	"$$py" -m venv $(VENV)

$(STAMP): $(REQUIREMENTS) | $(PY)
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' || \
	  { echo "error: $(VENV) runs Python $$($(PY) -V 2>&1); 3.12+ is needed. Remove $(VENV) and run make again." >&2; exit 1; }
	@echo "==> Installing requirements/dev.txt into $(VENV) (the first time takes a minute)"
	$(PY) -m pip install --disable-pip-version-check -r requirements/dev.txt
	@touch $(STAMP)

dev: install ## Run the service: embedded servers where env names none, migrate, Procfile.dev
	$(PY) -m devstack dev

test: install ## Run the test suite (embedded PostgreSQL/Valkey when env names none)
	$(PY) -m devstack test -- $(PYTEST_ARGS)

lint: install ## ruff check, ruff format --check, mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

dev-reset: install ## Stop what runs from .dev/ and delete it (asks first)
	$(PY) -m devstack reset

check-deploy: install ## manage.py check --deploy with production-like settings; any warning fails
	DJANGO_DEBUG=false POSTGRES_SERVER=db.invalid DJANGO_ALLOWED_HOSTS=orders.example.com \
	DJANGO_SECRET_KEY=check-deploy-only-$$(printf 'k%.0s' $$(seq 60)) \
	$(PY) manage.py check --deploy --fail-level WARNING
