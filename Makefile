# `make run` and `make test` work on a fresh Debian machine with Python 3.11 and root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall whenever pyproject.toml changes.
INSTALLED := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
TEST_INSTALLED := $(VENV)/.test-installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Tests run in a network namespace that has only loopback: no test traffic can leave the machine.
NETNS := $(if $(filter 0,$(shell id -u)),unshare -n,unshare -rn)

.PHONY: run test install clean-var

run: $(INSTALLED)
	$(BIN)/psc119 serve --demo

test: $(TEST_INSTALLED)
	$(BIN)/python -m mypy
	$(NETNS) sh -c 'ip link set lo up && exec $(BIN)/python -m pytest $(PYTEST_ARGS)'

$(VENV)/bin/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed; installing Debian's python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

$(INSTALLED): $(VENV)/bin/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(TEST_INSTALLED): $(VENV)/bin/python pyproject.toml
	@command -v ip >/dev/null || { apt-get update -qq && apt-get install -y -qq iproute2; }
	@# The browser tests drive Debian's Chromium (playwright install cannot download here).
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium; }
	@# The deployment test runs Debian's nginx as a child on free ports (never 80/443); coturn likewise.
	@test -x /usr/sbin/nginx || { apt-get update -qq && apt-get install -y -qq nginx; }
	@test -x /usr/bin/turnserver || { apt-get update -qq && apt-get install -y -qq coturn; }
	@# promtool (in Debian's prometheus package) checks and unit-tests deploy/prometheus/alerts.yml.
	@command -v promtool >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus; }
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(INSTALLED) $@

clean-var:
	rm -rf var
