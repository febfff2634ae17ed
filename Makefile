# Everything a fresh machine needs: Python 3.11+; these targets make the venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast test-processes lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/tether dev --example-worker

test: $(STAMP)
	$(BIN)/pytest -q

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not processes"

test-processes: $(STAMP)
	$(BIN)/pytest -q -m processes

lint: $(STAMP)
	$(BIN)/ruff check tether tests bench
	$(BIN)/ruff format --check tether tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/queue_engine.py
	$(BIN)/python bench/end_to_end.py
	$(BIN)/python bench/workflows.py

clean:
	rm -rf $(VENV) .tether .pytest_cache .mypy_cache .ruff_cache
