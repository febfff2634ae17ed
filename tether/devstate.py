"""What ``tether dev`` keeps in its data folder (``./.tether/``), so that the next start
and every other command on this machine find the same resources.

    .tether/dev.json   {"redis_port", "redis_url", "api_url", "pid"}: written at each start;
                       the Redis port is reused by the next start, so an exported
                       TETHER_REDIS_URL stays right across restarts
    .tether/dev.lock   flock()ed by the running ``tether dev`` (its PID inside): a second
                       one on the same folder refuses to start instead of opening the
                       same AOF files with a second Redis

``resolve_redis_url`` is the one rule for every command that reads Redis directly
(``tether inspect``, ``tether orchestrator``, ...): ``--redis-url``, else
``$TETHER_REDIS_URL``, else the dev Redis recorded in ``./.tether/dev.json``, else
``redis://127.0.0.1:6379/0``. ``find_redis`` also says which rule chose it, for messages.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

DEFAULT_DATA = Path(".tether")
STATE_FILE = "dev.json"
LOCK_FILE = "dev.lock"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# The dev Redis's port on a folder's first start (then whatever dev.json records): fixed,
# so that docs and muscle memory can say `redis-cli -p 6399`; off Redis's usual 6379.
DEFAULT_DEV_REDIS_PORT = 6399


@dataclass(frozen=True)
class RedisChoice:
    url: str
    source: str  # which rule chose it, e.g. "$TETHER_REDIS_URL"

    def describe(self) -> str:
        return f"{self.url} ({self.source})"


def read_state(data: Path = DEFAULT_DATA) -> dict[str, Any]:
    """What the last ``tether dev`` on ``data`` recorded ({} if nothing readable)."""
    try:
        state = orjson.loads((data / STATE_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return state if isinstance(state, dict) else {}


def write_state(data: Path, **values: Any) -> None:
    """Merge ``values`` into the recorded state (atomically: write, then rename)."""
    state = read_state(data) | values
    tmp = data / f".{STATE_FILE}.{os.getpid()}"
    tmp.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))
    tmp.replace(data / STATE_FILE)


def find_redis(explicit: str | None = None, data: Path = DEFAULT_DATA) -> RedisChoice:
    """The Redis a command should use, and which rule chose it."""
    if explicit:
        return RedisChoice(explicit, "--redis-url")
    if env := os.environ.get("TETHER_REDIS_URL"):
        return RedisChoice(env, "$TETHER_REDIS_URL")
    recorded = read_state(data).get("redis_url")
    if isinstance(recorded, str) and recorded:
        return RedisChoice(recorded, f"the dev Redis recorded in {data / STATE_FILE}")
    return RedisChoice(DEFAULT_REDIS_URL, "the default: no $TETHER_REDIS_URL, no ./.tether")


def resolve_redis_url(explicit: str | None = None, data: Path = DEFAULT_DATA) -> str:
    """``--redis-url``, else ``$TETHER_REDIS_URL``, else the dev Redis of ``./.tether``,
    else ``redis://127.0.0.1:6379/0``."""
    return find_redis(explicit, data).url


class DevLocked(Exception):
    """Another ``tether dev`` holds the data folder."""

    def __init__(self, data: Path, pid: str) -> None:
        self.pid = pid
        super().__init__(
            f"another tether dev (PID {pid or 'unknown'}) is running on {data}/: stop it "
            "first, or give this one its own folder with --data"
        )


class DevLock:
    """An exclusive ``flock`` on ``data/dev.lock`` for as long as ``tether dev`` runs.

    The kernel drops it when the process dies however it dies (even SIGKILL), so a stale
    lock never needs cleaning up; children do not inherit it (Python opens files
    close-on-exec), so a child that outlived its parent cannot hold it either."""

    def __init__(self, data: Path) -> None:
        self.path = data / LOCK_FILE
        self.data = data
        self._file: IO[str] | None = None

    def acquire(self) -> DevLock:
        self.data.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a+")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            pid = file.read().strip()
            file.close()
            raise DevLocked(self.data, pid) from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self._file = file
        return self

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.truncate(0)
            self._file.close()  # closing the descriptor drops the flock
            self._file = None

    def __enter__(self) -> DevLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
