# Every target bootstraps .venv from python3 on a fresh machine; nothing else is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SOURCES := src tests benchmarks
# pytest-xdist processes for `make test`; TEST_WORKERS=0 runs the suite in one process. Tests
# go to whichever process is free (`--dist load`): grouping them by file (loadfile, loadscope)
# keys tests by node id and runs one of schemathesis's 22 same-id cases instead of 22.
TEST_WORKERS ?= 2

.PHONY: demo test lint format bench sandbox clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)  ## start the sandbox API and run a real rate-limited fetch through interlink
	$(BIN)/interlink demo

test: lint  ## lint, type check, then the whole test suite
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy
	$(BIN)/bandit --quiet --configfile pyproject.toml --recursive src --severity-level medium

format: $(STAMP)
	$(BIN)/ruff check --fix $(SOURCES)
	$(BIN)/ruff format $(SOURCES)

bench: $(STAMP)  ## print the benchmark figures recorded in docs/benchmarks.md
	$(BIN)/python benchmarks/http_overhead.py
	$(BIN)/python benchmarks/read.py
	$(BIN)/python benchmarks/metrics.py

sandbox: $(STAMP)  ## serve the sandbox APIs in the foreground
	$(BIN)/interlink sandbox

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
