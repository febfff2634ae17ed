"""The one boundary where redis-py's exceptions become tether's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis import exceptions as redis_exc

from tether.errors import NotReplicated, RedisOutOfMemory, RedisUnavailable, TetherError
from tether.queue.redis_py import NotReplicatedError


def translate(exc: redis_exc.RedisError) -> TetherError:
    """The typed error for a redis-py exception."""
    text = str(exc)
    if isinstance(exc, NotReplicatedError):
        return NotReplicated(
            f"the change was made but not confirmed by Redis replicas: {text}; retry "
            "with the same idempotency key",
            details={"redis": text},
        )
    # redis-py strips the "OOM" error code from the message of OutOfMemoryError.
    if isinstance(exc, redis_exc.OutOfMemoryError) or (
        isinstance(exc, redis_exc.ResponseError) and text.startswith("OOM")
    ):
        return RedisOutOfMemory(
            "Redis is out of memory and refuses writes (maxmemory with noeviction); "
            "nothing was changed",
            details={"redis": text},
        )
    if isinstance(exc, redis_exc.ConnectionError | redis_exc.TimeoutError):
        return RedisUnavailable(f"Redis is unreachable: {text}", details={"redis": text})
    if isinstance(exc, redis_exc.BusyLoadingError):
        return RedisUnavailable("Redis is loading its data set", details={"redis": text})
    if isinstance(exc, redis_exc.ReadOnlyError):
        return RedisUnavailable("Redis is a read-only replica", details={"redis": text})
    return TetherError(f"unexpected Redis error: {text}", details={"redis": text})


@contextmanager
def redis_errors() -> Iterator[None]:
    try:
        yield
    except redis_exc.RedisError as exc:
        raise translate(exc) from exc
