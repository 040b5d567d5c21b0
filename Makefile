# The README's two commands: `make demo` and `make test`. Each bootstraps .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/statsd_daemon/node_modules/.installed

.PHONY: demo test lint typecheck pytest bench soak clean venv chromium

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

# The real statsd daemon (npm statsd 0.9.0, pinned by the committed lock file) for
# tests/test_statsd_daemon.py. Without node/npm this fails loudly, never skips.
$(NODE_STAMP): tests/statsd_daemon/package.json tests/statsd_daemon/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "node and npm are needed for the statsd daemon integration test:"; \
	  echo "  Debian/Ubuntu: sudo apt-get install nodejs npm   (or https://nodejs.org, node >= 18)"; \
	  exit 1; }
	cd tests/statsd_daemon && npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

# Debian's chromium for the real-browser beacon test (tests/test_beacon_browser.py).
# Idempotent: installs only when missing; fails loudly when it cannot (never skips).
chromium:
	@command -v chromium >/dev/null || { \
	  command -v apt-get >/dev/null && export DEBIAN_FRONTEND=noninteractive && \
	  { apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }; }; } || { \
	  echo "chromium is needed for tests/test_beacon_browser.py and could not be installed:"; \
	  echo "  Debian/Ubuntu: apt-get install -y chromium   (as root)"; \
	  exit 1; }
	@command -v chromium >/dev/null

demo: $(STAMP)
	$(BIN)/fxa-metrics demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# Branch coverage, subprocesses included, gated at 95% (pyproject [tool.coverage]);
# the test order is random and pytest-randomly prints the seed in the header.
pytest: $(STAMP) $(NODE_STAMP) chromium
	rm -f .coverage .coverage.*
	COVERAGE_FILE=$(CURDIR)/.coverage $(BIN)/coverage run -m pytest
	COVERAGE_FILE=$(CURDIR)/.coverage $(BIN)/coverage combine -q
	COVERAGE_FILE=$(CURDIR)/.coverage $(BIN)/coverage report

test: lint typecheck pytest

# Every route's rows, 3 runs each in fresh interpreters (~15-30 min on 2 busy
# cores); rewrites the table in docs/performance.md. A quick smoke run of some
# routes: BENCH_ROUNDS=2 .venv/bin/python -m bench --only glean --runs 1
bench: $(STAMP)
	$(BIN)/python -m bench --write

# Not part of `make test` (minutes): 1M records through every sink with RSS
# before/after, then the hypothesis suites with the soak profile (budgets x20).
# SOAK_N=... changes the record count; docs/reliability.md has the figures.
soak: $(STAMP)
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .coverage .coverage.*
