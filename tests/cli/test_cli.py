"""The `tether` command line: its registry of groups, arguments, errors and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys

import pytest

from tether.cli import GROUPS, build_parser, main
from tether.cli.common import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.queue.redis_py import redis_client
from tether.redis_server import RedisServer, free_port


def test_every_registered_group_is_a_command() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(GROUPS) <= set(sub.choices)


def test_the_required_commands_are_registered() -> None:
    assert {"dev", "api", "orchestrator", "worker", "jobs", "inspect"} <= set(GROUPS)


def test_help_runs_as_a_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "orchestrator" in done.stdout


def test_an_unknown_command_exits_with_usage_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["frobnicate"])
    assert exit_.value.code == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err


def test_a_port_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["api", "--port", "70000"])
    assert exit_.value.code == EXIT_USAGE
    assert "port must be 1-65535" in capsys.readouterr().err


def test_a_worker_spec_without_colon_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["worker", "nocolon"])
    assert exit_.value.code == EXIT_USAGE
    assert "package.module:WorkerSettings" in capsys.readouterr().err


def test_a_worker_module_that_does_not_exist_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["worker", "no_such_module_xyz:WorkerSettings"])
    assert exit_.value.code == EXIT_USAGE
    assert "cannot import 'no_such_module_xyz'" in capsys.readouterr().err


def test_an_api_url_without_scheme_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["jobs", "list", "--url", "localhost:8000"])
    assert exit_.value.code == EXIT_USAGE
    assert "http://" in capsys.readouterr().err


def test_a_malformed_job_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["inspect", "not a job id"])
    assert exit_.value.code == EXIT_USAGE
    assert "JOB_ID" in capsys.readouterr().err


def test_inspect_exits_3_when_redis_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["inspect", "job1", "--redis-url", f"redis://127.0.0.1:{free_port()}/0"])
    assert code == EXIT_UNAVAILABLE
    assert "unreachable" in capsys.readouterr().err


def test_jobs_list_exits_3_when_the_api_is_unreachable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["jobs", "list", "--url", f"http://127.0.0.1:{free_port()}"])
    assert code == EXIT_UNAVAILABLE
    assert "error:" in capsys.readouterr().err


def _enqueue_and_claim(url: str, keys: Keys) -> str:
    async def go() -> str:
        redis = redis_client(url, decode_responses=True)
        try:
            engine = QueueEngine(redis, QueueConfig(keys=keys, job_timelines=True))
            job = await engine.enqueue("hello", {"name": "world"})
            await engine.claim("machine-a", ["hello"], 1)
            return job.id
        finally:
            await redis.aclose()

    return asyncio.run(go())


def test_inspect_prints_the_job_hash_timeline_and_lease_as_redis_cli_would(
    redis_server: RedisServer,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TETHER_REDIS_URL", redis_server.url)
    monkeypatch.setenv("TETHER_PREFIX", keys.prefix)
    job_id = _enqueue_and_claim(redis_server.url, keys)
    assert main(["inspect", job_id]) == 0
    out = capsys.readouterr().out
    pk = keys.for_id(job_id)
    assert f"> HGETALL {pk.job(job_id)}\n" in out
    assert '"status"\n' in out and '"running"\n' in out
    assert f"> XRANGE {pk.timeline(job_id)} - +\n" in out
    assert '"claimed"' in out
    lease_block = out.split(f"> ZSCORE {pk.leases} {job_id}\n", 1)[1]
    assert lease_block.splitlines()[0].strip('"').isdigit()


def test_inspect_of_a_runs_job_shows_the_runs_timeline(
    redis_server: RedisServer,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tether.queue.runs import RunEngine, activation_function

    async def go() -> str:
        redis = redis_client(redis_server.url, decode_responses=True)
        try:
            config = QueueConfig(keys=keys)
            await RunEngine(redis, config).start("order", {"sku": "A1"}, run_id="r1", version=1)
            [job] = await QueueEngine(redis, config).claim(
                "machine-a", [activation_function("order", 1)], 1
            )
            return job.id
        finally:
            await redis.aclose()

    job_id = asyncio.run(go())
    monkeypatch.setenv("TETHER_PREFIX", keys.prefix)
    assert main(["inspect", job_id, "--redis-url", redis_server.url]) == 0
    out = capsys.readouterr().out
    # A run's jobs write their events to the run's timeline, not to one of their own.
    assert f"> XRANGE {keys.for_id('r1').timeline('r1')} - +\n" in out
    assert '"created"' in out


def test_inspect_of_an_unknown_job_exits_1(
    redis_server: RedisServer,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TETHER_PREFIX", keys.prefix)
    code = main(["inspect", "nope", "--redis-url", redis_server.url])
    assert code == EXIT_FAILED
    assert "no job nope" in capsys.readouterr().err


def test_dev_rejects_a_worker_spec_without_colon(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["dev", "--worker", "app.tasks"])
    assert exit_.value.code == EXIT_USAGE
    assert "MODULE:SETTINGS" in capsys.readouterr().err


def test_the_orchestrator_interval_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["orchestrator", "--interval", "0"])
    assert exit_.value.code == EXIT_USAGE
    assert "greater than 0" in capsys.readouterr().err


def test_a_bad_partitions_setting_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TETHER_PARTITIONS", "many")
    with pytest.raises(SystemExit) as exit_:
        main(["inspect", "job1"])
    assert exit_.value.code == EXIT_USAGE
    assert "TETHER_PARTITIONS" in capsys.readouterr().err


def test_inspect_reads_the_job_in_the_namespace_it_is_told(
    redis_server: RedisServer,
    keys: Keys,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("TETHER_REDIS_URL", redis_server.url)
    monkeypatch.setenv("TETHER_PREFIX", keys.prefix)
    acme = keys.for_namespace("acme")
    job_id = _enqueue_and_claim(redis_server.url, acme)

    assert main(["inspect", job_id]) == EXIT_FAILED  # not in the default namespace
    assert main(["inspect", job_id, "--namespace", "acme"]) == 0
    assert f"> HGETALL {acme.for_id(job_id).job(job_id)}\n" in capsys.readouterr().out


def test_jobs_list_filters_on_every_job_status_expired_included() -> None:
    from tether.protocol import JobStatus

    parser = build_parser()
    for status in JobStatus:
        args = parser.parse_args(["jobs", "list", "--status", status.value])
        assert args.status == status.value
    assert parser.parse_args(["jobs", "list", "--status", "expired"]).status == "expired"
