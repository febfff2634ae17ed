"""`tether keys create|list|revoke` straight on Redis, and `tether api` refusing to start
without any key."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from tether.cli import main
from tether.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from tether.queue.apikeys import KeyStore
from tether.queue.keys import Keys


async def cli(*args: str) -> int:
    """``tether ARGS`` in a thread (each command runs its own event loop)."""
    return await asyncio.to_thread(main, list(args))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, keys: Keys) -> None:
    monkeypatch.setenv("TETHER_REDIS_URL", redis_url)
    monkeypatch.setenv("TETHER_PREFIX", keys.prefix)


async def test_keys_create_prints_the_new_key_alone_on_one_line(
    env: None, capsys: pytest.CaptureFixture[str], redis: Redis, keys: Keys
) -> None:
    code = await cli(
        "keys", "create", "--role", "machine", "--name", "w1", "--functions", "billing.*"
    )

    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert out.count("\n") == 1 and out.startswith("tk_")
    record = await KeyStore(redis, keys).lookup(out.strip())
    assert record is not None
    assert (record.name, record.role, record.namespace, record.functions) == (
        "w1",
        "machine",
        "default",
        ("billing.*",),
    )


async def test_keys_list_shows_names_and_roles_never_keys(
    env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    await cli("keys", "create", "--role", "viewer", "--name", "dash", "--namespace", "acme")
    key = capsys.readouterr().out.strip()

    assert await cli("keys", "list") == EXIT_OK

    out = capsys.readouterr().out
    assert key not in out
    row = next(line.split() for line in out.splitlines() if line.startswith("dash"))
    assert row[:3] == ["dash", "viewer", "acme"]


async def test_keys_revoke_forgets_the_key(
    env: None, capsys: pytest.CaptureFixture[str], redis: Redis, keys: Keys
) -> None:
    await cli("keys", "create", "--role", "app", "--name", "old")
    key = capsys.readouterr().out.strip()

    assert await cli("keys", "revoke", "old") == EXIT_OK
    assert await KeyStore(redis, keys).lookup(key) is None
    assert await cli("keys", "revoke", "old") == EXIT_FAILED


async def test_a_second_key_of_the_same_name_is_refused(
    env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    await cli("keys", "create", "--role", "app", "--name", "twice")

    assert await cli("keys", "create", "--role", "admin", "--name", "twice") == EXIT_FAILED
    assert "exists already" in capsys.readouterr().err


async def test_only_machine_keys_take_a_function_allow_list(env: None) -> None:
    with pytest.raises(SystemExit) as exit_:
        await cli("keys", "create", "--role", "app", "--name", "x", "--functions", "a.*")
    assert exit_.value.code == EXIT_USAGE


def test_tether_api_refuses_to_start_without_any_key(
    env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["api", "--port", "1"])  # never gets as far as binding the port

    assert exit_.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no API key exists" in err and "--no-auth" in err
