# forgeflow: `make run` starts the service with embedded defaults; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench profile lock clean schema

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/forgeflow serve --demo

test: $(STAMP) lint typecheck unit

LINT_PATHS := $(wildcard service handlers tests benchmarks tools)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy service handlers

unit: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

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
	rm -rf $(VENV) .forgeflow .mypy_cache .ruff_cache
