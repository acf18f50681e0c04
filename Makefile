# Two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest install clean bench load fuzz

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@$(BIN)/python -c 'from relay.cli.serve import banner; banner()'
	@echo "Create the first admin client in another terminal with:"
	@echo "    $(BIN)/relay clients create --name ops --scope admin"
	$(BIN)/relay serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench main.py
	$(BIN)/ruff format --check src tests bench main.py
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

# Benchmark (issue 5): installs nginx and wrk if missing; QUICK=1 for a short run.
# `$(BIN)/python -m bench --help` lists its other commands (cost, inprocess, profile, load).
bench: $(STAMP)
	$(BIN)/python -m bench

# Many more OpenAPI fuzz cases than `make test` runs.
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} $(BIN)/pytest -q tests/fuzz

# 20,000 mixed requests at 64 connections against a real Relay on PostgreSQL and Redis.
load: $(STAMP)
	$(BIN)/python -m bench load

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
