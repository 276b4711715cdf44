# The front door. `make dev` and `make test` need only Python 3.12+: servers that
# the environment does not name are started from PyPI wheels (docs/dev-stack.md).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# checkov.txt is left out: it goes into its own venv (below), not .venv.
REQUIREMENTS := $(filter-out requirements/checkov.txt,$(wildcard requirements/*.txt))
# checkov pins packaging<24 and pulls in boto3, numpy, ...: it gets a venv of its own,
# made on the first `make deploy-check` and again only when requirements/checkov.txt changes.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# Candidates for the interpreter that makes .venv, first that is 3.12 or newer wins.
# Override: make install PYTHON=/path/to/python3.12
PYTHON_CANDIDATES := python3.13 python3.12 python3
PYTEST_ARGS ?=

.PHONY: help install dev test test-fast test-browser lint check-deploy dev-reset deploy-check deploy-smoke fuzz bench bench-scale contract-check contract-docs contract-release restore-drill

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-13s %s\n", $$1, $$2}'
	@echo "  make test PYTEST_ARGS='-k cancel -x'   pass arguments to pytest"
	@echo "  make deploy-smoke SMOKE_ARGS=--keep    keep the smoke run's logs and data"

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
	@# --no-compile: byte-compiling every installed file took longer than installing them (83 s
	@# against 204 s on a busy 2-core machine); Python compiles what is imported, once, on first use.
	$(PY) -m pip install --disable-pip-version-check --no-compile -r requirements/dev.txt
	@touch $(STAMP)

dev: install ## Run the service: embedded servers where env names none, migrate, Procfile.dev
	$(PY) -m devstack dev

# pytest-xdist workers: each has its own test database, Redis databases and Kafka broker
# (orders_project/settings_test.py). Three fit the suite's Redis databases; on two cores three
# beat two by a fifth (the suite mostly waits); `make test-fast` takes ~85 s on a quiet machine.
# With PYTEST_ARGS (a file, -k, -x) one process: no worker start-up for a few tests.
TEST_WORKERS ?= $(if $(PYTEST_ARGS),0,3)
# worksteal: a worker that runs out takes tests queued for the other (durations differ 1000-fold).
TEST_XDIST := -n $(TEST_WORKERS) $(if $(filter-out 0,$(TEST_WORKERS)),--dist worksteal)
# What `make test-fast` leaves out (markers in pyproject.toml): spawned service processes,
# Chromium, Schemathesis. CI runs them all.
FAST_MARKERS := not processes and not browser and not fuzz

test: install ## Run the test suite (embedded PostgreSQL/Valkey when env names none)
	$(PY) -m devstack test -- $(TEST_XDIST) $(PYTEST_ARGS)

test-fast: install ## After each change: the suite without spawned processes, Chromium or Hypothesis walks (~90 s)
	$(PY) -m devstack test -- $(TEST_XDIST) -m "$(FAST_MARKERS)" $(PYTEST_ARGS)

FUZZ_MAX_EXAMPLES ?= 1000
FUZZ_STATEFUL_EXAMPLES ?= 200
FUZZ_STATEFUL_STEPS ?= 10
# BROWSER_SCREENSHOTS=<dir> (relative to the repo, or absolute) also saves the named
# pages the tests visit, for a reviewer; failures always save one (.dev/browser-failures/).
test-browser: install ## Only the Chromium tests (tests/browser): admin, operations page, browsable API, API docs
	$(PY) -m devstack test -- -m browser tests/browser $(PYTEST_ARGS)

fuzz: install ## Schemathesis, long and random: FUZZ_MAX_EXAMPLES (1000) requests per operation and mode, then FUZZ_STATEFUL_EXAMPLES (200) linked scenarios
	FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) FUZZ_STATEFUL_EXAMPLES=$(FUZZ_STATEFUL_EXAMPLES) FUZZ_STATEFUL_STEPS=$(FUZZ_STATEFUL_STEPS) \
	  FUZZ_RANDOM=1 $(PY) -m devstack test -- orders/tests/test_schemathesis.py $(PYTEST_ARGS)

lint: install ## ruff check, ruff format --check, mypy, import contracts (lint-imports)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports --no-logo

contract-check: install ## Event schemas vs the last released copy (breaking changes fail); docs/events.md in sync
	$(PY) -m devstack.contract check

contract-docs: install ## Rewrite docs/events.md's field tables from orders_project/contract/schemas
	$(PY) -m devstack.contract docs

contract-release: install ## At a release: copy the event schemas to docs/contract/released/ (the next check's baseline)
	$(PY) -m devstack.contract release

BENCH_ARGS ?=
bench: install ## Relay, delivery, lifecycle, API, user-event and memory figures beside bare baselines (~10 min; BENCH_ARGS=--quick ~2 min)
	$(PY) -m devstack.bench $(BENCH_ARGS)

BENCH_SCALE_ARGS ?=
bench-scale: install ## The outbox at size beside a 10,000-row one: relay, API, retention, WAL (~15 min at 10,000,000 rows; BENCH_SCALE_ARGS='--rows N' or --quick)
	$(PY) -m devstack.bench scale $(BENCH_SCALE_ARGS)

dev-reset: install ## Stop what runs from .dev/ and delete it (asks first)
	$(PY) -m devstack reset

check-deploy: install ## manage.py check --deploy with production-like settings; any warning fails
	DJANGO_DEBUG=false POSTGRES_SERVER=db.invalid DJANGO_ALLOWED_HOSTS=orders.example.com \
	DJANGO_SECRET_KEY=check-deploy-only-$$(printf 'k%.0s' $$(seq 60)) \
	$(PY) manage.py check --deploy --fail-level WARNING

$(CHECKOV_STAMP): requirements/checkov.txt | $(PY)
	@echo "==> Installing requirements/checkov.txt into $(CHECKOV_VENV) (the first time takes about 30 s)"
	@test -x $(CHECKOV_VENV)/bin/python || $(PY) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --disable-pip-version-check --no-compile -q -r requirements/checkov.txt
	@touch $(CHECKOV_STAMP)

DEPLOY_CHECK_ARGS ?=
deploy-check: install $(CHECKOV_STAMP) ## hadolint, chart lint+render, kubernetes-validate, checkov, terraform fmt, tests/deploy (offline; DEPLOY_CHECK_ARGS=--skip-tests without tests/deploy)
	$(PY) -m devstack deploy-check $(DEPLOY_CHECK_ARGS)

SMOKE_ARGS ?=
deploy-smoke: install ## Run the chart's own commands and env as local processes on embedded servers; order -> Kafka
	$(PY) -m devstack deploy-smoke $(SMOKE_ARGS)

DRILL_ARGS ?=
restore-drill: install ## Back up, restore PostgreSQL to a point in time, check Kafka against it, reconcile (DRILL_ARGS=--quick)
	$(PY) -m devstack.restore_drill $(DRILL_ARGS)

CHAOS_ARGS ?=
.PHONY: chaos
chaos: install ## Break the running service under load (kill -9, outages, SIGTERM); nothing lost, doubled or reordered (~5 min)
	$(PY) -m devstack chaos $(CHAOS_ARGS)
