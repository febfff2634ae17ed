"""Every use of redis-py beyond its documented client API, in one module.

The rest of tether opens Redis clients with ``redis_client``/``redis_pool`` and never
touches a redis-py connection, pool or parser directly: what follows depends on how
redis-py is built inside, and a new release may change it. Each piece names the versions
it was checked on; ``tests/queue/test_redis_py_internals.py`` fails with a message naming
the piece when an installed redis-py no longer matches.

Checked on redis-py 5.0.0, 5.3.1 and 8.1.0 (pyproject allows ``>=5.0,<9``).

Why each piece exists:
- RESP2, always. redis-py 8 speaks RESP3 unless told otherwise, and under RESP3 pub/sub
  messages are *push* replies that ``read_response`` hands to a callback instead of
  returning: the notifier's PSUBSCRIBE confirmation never came back, its read hit
  redis-py 8's default 5 s socket timeout, and every long poll fell back to the 1 s
  re-check. Our Lua replies and our reading of pub/sub frames are written for RESP2, so
  every client says so explicitly, whatever the URL or the library default.
- A socket timeout that is ours, not the library's (redis-py 8 defaults to 5 s, 5.x to
  none): the subscription must be able to sit silent for minutes.
- ``subscription_connection``: one raw connection read directly (not ``PubSub``), at
  thousands of messages a second a quarter of the CPU per message.
- ``pooled_connection``: ``ConnectionPool.get_connection`` requires a command name before
  5.3 and deprecates passing one from 5.3 on.
- ``FastPack``: packs commands without redis-py's per-argument buffer re-joins; it reads
  the connection's ``encoder`` and private ``_buffer_cutoff``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)

CHECKED_ON = ("5.0.2", "5.3.1", "8.1.0")
PROTOCOL = 2
VERSION = redis.__version__

# -- clients ------------------------------------------------------------------------


def client_options(**options: Any) -> dict[str, Any]:
    """Keyword arguments for redis-py's ``from_url``: RESP2 and an explicit socket timeout
    (``None``, wait as long as it takes, unless the caller sets one)."""
    return {"socket_timeout": None, **options, "protocol": PROTOCOL}


def _force_protocol(pool: ConnectionPool) -> None:
    # ``from_url`` lets a ``?protocol=3`` in the URL override the keyword: ours wins.
    pool.connection_kwargs["protocol"] = PROTOCOL


def redis_client(url: str, **options: Any) -> Redis:
    """A client on its own pool, speaking RESP2 (see the module docstring)."""
    client = Redis.from_url(url, **client_options(**options))
    _force_protocol(client.connection_pool)
    return client


def blocking_pool(url: str, **options: Any) -> BlockingConnectionPool:
    """A bounded pool whose connections pack commands with ``FastPack``."""
    pool = BlockingConnectionPool.from_url(url, **client_options(**options))
    _force_protocol(pool)
    pool.connection_class = fast_connection_class(pool.connection_class)
    return pool


# -- raw connections ------------------------------------------------------------------

# redis-py < 5.3 requires a command name here; 5.3 deprecates passing one.
_NAME = inspect.signature(ConnectionPool.get_connection).parameters.get("command_name")
_NAME_ARGS: tuple[str, ...] = (
    ("EVALSHA",) if _NAME is not None and _NAME.default is inspect.Parameter.empty else ()
)


@asynccontextmanager
async def pooled_connection(client: Redis) -> AsyncIterator[AbstractConnection]:
    """A connection of ``client``'s pool, given back on exit; dropped (not reused with
    unread replies in flight) when the block raises or is cancelled."""
    pool = client.connection_pool
    conn: AbstractConnection = await pool.get_connection(*_NAME_ARGS)  # type: ignore[no-untyped-call]
    try:
        yield conn
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


def subscription_connection(client: Redis) -> AbstractConnection:
    """A new, unconnected connection with ``client``'s address, credentials and TLS, for
    a subscription read by hand: RESP2 and no socket timeout (the reader times its own
    reads with ``read_reply``)."""
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "protocol": PROTOCOL, "socket_timeout": None}
    conn: AbstractConnection = pool.connection_class(**kwargs)
    return conn


async def read_reply(conn: AbstractConnection, timeout: float) -> Any | None:
    """The next reply on ``conn``, or None if none came within ``timeout`` seconds (the
    connection stays usable: redis-py's parsers resume a partly read reply)."""
    return await conn.read_response(timeout=timeout)


# -- packing ---------------------------------------------------------------------------


class FastPack(AbstractConnection):
    """Mixin before a redis-py connection class: the same bytes as its ``pack_command``.

    Packing is where an API process spends most of its CPU at high load: every job is an
    EVALSHA of a dozen or more arguments, and redis-py encodes each through a chain of
    ``isinstance`` checks and re-joins its buffer once per argument. This encodes the
    common types (str, bytes, int) directly and joins once; anything else (floats,
    memoryviews, a command name with a space) takes redis-py's own path.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0] if args else None
        if type(first) is not str or " " in first:
            return super().pack_command(*args)
        encoding, errors = self.encoder.encoding, self.encoder.encoding_errors
        cutoff = self._buffer_cutoff
        output: list[bytes] = []
        pieces: list[bytes] = [b"*%d\r\n" % len(args)]
        for arg in args:
            kind = type(arg)
            if kind is str:
                data = arg.encode(encoding, errors)
            elif kind is bytes:
                data = arg
            elif kind is int:
                data = b"%d" % arg
            else:
                # floats, memoryviews; anything else raises as redis-py does
                data = self.encoder.encode(arg)  # type: ignore[no-untyped-call]
            size = len(data)
            if size > cutoff or isinstance(data, memoryview):
                # Large values go out as their own buffer, uncopied, as redis-py does.
                pieces.append(b"$%d\r\n" % size)
                output.append(b"".join(pieces))
                output.append(data)
                pieces = [b"\r\n"]
            else:
                pieces.append(b"$%d\r\n%b\r\n" % (size, data))
        output.append(b"".join(pieces))
        return output


class FastConnection(FastPack, Connection):
    pass


class FastSSLConnection(FastPack, SSLConnection):
    pass


class FastUnixConnection(FastPack, UnixDomainSocketConnection):
    pass


FAST_CLASSES: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: FastConnection,
    SSLConnection: FastSSLConnection,
    UnixDomainSocketConnection: FastUnixConnection,
}


def fast_connection_class(cls: type[AbstractConnection]) -> type[AbstractConnection]:
    """The fast-packing twin of ``cls`` (``cls`` itself if it has none)."""
    return FAST_CLASSES.get(cls, cls)
