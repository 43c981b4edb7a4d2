# forgeflow: `make run` starts the service with embedded defaults; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench chaos profile lock clean schema browsers wrk

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/forgeflow serve --demo

test: $(STAMP) browsers lint typecheck unit

# The browser tests drive Debian's headless Chromium; installed here when missing and apt can
# (as root). Elsewhere: apt-get install -y chromium chromium-driver (the tests skip without it,
# saying so; with CI=true they fail instead).
browsers:
	@command -v chromedriver >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium and chromium-driver for the browser tests"; \
	    (apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	     { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null; }) || \
	    echo "could not install chromium: the browser tests will say so"; \
	  else \
	    echo "no chromium: the browser tests skip (apt-get install -y chromium chromium-driver)"; \
	  fi; }

LINT_PATHS := $(wildcard service handlers tests benchmarks tools)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy service handlers

unit: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP) wrk
	$(BIN)/python -m benchmarks.run

# The ingest benchmark drives the web tier with wrk: installed here when missing and apt can (as
# root). Elsewhere: apt-get install -y wrk
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing wrk for the ingest benchmark"; \
	    (apt-get install -y -q wrk >/dev/null 2>&1 || \
	     { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q wrk >/dev/null; }) || \
	    echo "could not install wrk: apt-get install -y wrk"; \
	  else \
	    echo "make bench needs wrk: apt-get install -y wrk"; \
	  fi; }

# Hostile requests and failing parts, on demand (about 7 minutes): benchmarks/CHAOS.md
chaos: $(STAMP)
	$(BIN)/python -m benchmarks.chaos

profile: $(STAMP)
	$(BIN)/python -m benchmarks.profile

schema: $(STAMP)
	$(BIN)/forgeflow schema > config/schema/forgeflow.schema.json

# Re-resolve the pinned dependency set from pyproject.toml (run after changing dependencies).
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --disable-pip-version-check setuptools wheel -e '.[dev]'
	.lock-venv/bin/python -m pip freeze --all --exclude pip --exclude-editable --exclude forgeflow | sort > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .forgeflow .mypy_cache .ruff_cache .screenshots
