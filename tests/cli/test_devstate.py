"""tether.devstate: which Redis a command uses, and the one-dev-per-folder lock."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from tether.devstate import DevLock, DevLocked, find_redis, resolve_redis_url, write_state


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("TETHER_REDIS_URL", raising=False)
    folder = tmp_path / ".tether"
    folder.mkdir()
    return folder


def test_an_explicit_url_wins_over_everything(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_REDIS_URL", "redis://env:1/0")
    write_state(data, redis_url="redis://dev:2/0")
    assert find_redis("redis://flag:3/0", data).describe() == "redis://flag:3/0 (--redis-url)"


def test_the_environment_wins_over_the_dev_folder(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_REDIS_URL", "redis://env:1/0")
    write_state(data, redis_url="redis://dev:2/0")
    assert find_redis(None, data).source == "$TETHER_REDIS_URL"
    assert resolve_redis_url(None, data) == "redis://env:1/0"


def test_without_the_environment_the_dev_redis_of_the_folder_is_used(data: Path) -> None:
    write_state(data, redis_url="redis://127.0.0.1:6399/0", redis_port=6399)
    choice = find_redis(None, data)
    assert choice.url == "redis://127.0.0.1:6399/0"
    assert choice.source == f"the dev Redis recorded in {data / 'dev.json'}"


def test_with_nothing_recorded_the_default_is_used_and_said(data: Path) -> None:
    choice = find_redis(None, data)
    assert choice.url == "redis://127.0.0.1:6379/0"
    assert "default" in choice.source


def test_an_unreadable_state_file_counts_as_nothing_recorded(data: Path) -> None:
    (data / "dev.json").write_text("{not json")
    assert find_redis(None, data).url == "redis://127.0.0.1:6379/0"


def test_writing_state_merges_with_what_was_recorded(data: Path) -> None:
    write_state(data, redis_port=6399, pid=12)
    write_state(data, pid=None)
    assert orjson.loads((data / "dev.json").read_bytes()) == {"redis_port": 6399, "pid": None}


def test_a_second_lock_on_a_folder_is_refused_naming_the_holders_pid(data: Path) -> None:
    with DevLock(data), pytest.raises(DevLocked) as refused:
        DevLock(data).acquire()
    assert refused.value.pid == str(os.getpid())
    assert f"another tether dev (PID {os.getpid()}) is running on {data}/" in str(refused.value)


def test_a_released_lock_can_be_taken_again(data: Path) -> None:
    with DevLock(data):
        pass
    with DevLock(data) as again:
        assert again.path.read_text().strip() == str(os.getpid())
