# `make run` and `make test` work on a fresh Debian machine with Python 3.11 and root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Dependencies install from lock files pinned with hashes (`make lock` refreshes them from pyproject.toml).
LOCK := requirements.lock
TEST_LOCK := requirements-test.lock
# Reinstall whenever pyproject.toml or a lock file changes.
STAMP := $(shell cat pyproject.toml $(LOCK) $(TEST_LOCK) | cksum | cut -d' ' -f1)
INSTALLED := $(VENV)/.installed-$(STAMP)
TEST_INSTALLED := $(VENV)/.test-installed-$(STAMP)
NODE_INSTALLED := node_modules/.installed-$(shell cksum package-lock.json | cut -d' ' -f1)
# uv only resolves the locks; it is no dependency of the server or its tests. It keeps the pins a lock
# already has unless asked to move them: `make lock LOCK_ARGS=--upgrade` (or --upgrade-package NAME).
UV_VERSION := 0.13.9
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --custom-compile-command "make lock" --quiet $(LOCK_ARGS)
# Tests run in a network namespace that has only loopback: no test traffic can leave the machine.
NETNS := $(if $(filter 0,$(shell id -u)),unshare -n,unshare -rn)

.PHONY: run test bench lock clean-var

run: $(INSTALLED)
	$(BIN)/psc119 serve --demo

test: $(TEST_INSTALLED) $(NODE_INSTALLED)
	$(BIN)/ruff check
	$(BIN)/python -m mypy
	node_modules/.bin/tsc
	$(NETNS) sh -c 'ip link set lo up && exec $(BIN)/python -m pytest $(PYTEST_ARGS)'

# Every benchmark against its baseline, measured in the same run: one table, and bench/results/latest.json
# (BENCHMARKS.md says how to read it). Not part of `make test`; BENCH_ARGS=--full for the benchmarks' own sizes.
bench: $(TEST_INSTALLED) $(NODE_INSTALLED)
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/run.py $(BENCH_ARGS)

$(VENV)/bin/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed; installing Debian's python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

$(INSTALLED): $(VENV)/bin/python pyproject.toml $(LOCK)
	$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@

$(TEST_INSTALLED): $(VENV)/bin/python pyproject.toml $(TEST_LOCK)
	@command -v ip >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2; }
	@# The browser tests drive Debian's Chromium (playwright install cannot download here).
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }
	@# The deployment test runs Debian's nginx as a child on free ports (never 80/443); coturn likewise.
	@test -x /usr/sbin/nginx || { apt-get update -qq && apt-get install -y -qq nginx; }
	@test -x /usr/bin/turnserver || { apt-get update -qq && apt-get install -y -qq coturn; }
	@# promtool (in Debian's prometheus package) checks and unit-tests deploy/prometheus/alerts.yml.
	@command -v promtool >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus; }
	$(BIN)/python -m pip install -q --require-hashes -r $(TEST_LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(INSTALLED) $@

# The pages' JavaScript is type-checked by TypeScript from npm (package-lock.json pins it with hashes).
$(NODE_INSTALLED): package.json package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lock: $(VENV)/bin/python
	$(BIN)/python -m pip install -q uv==$(UV_VERSION)
	$(UV_COMPILE) -o $(LOCK)
	$(UV_COMPILE) --extra test -o $(TEST_LOCK)

clean-var:
	rm -rf var
