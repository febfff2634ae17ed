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
- Redis Cluster: ``redis+cluster://host:port[,host:port...]`` (``rediss+cluster://``
  with TLS) selects ``redis.asyncio.cluster.RedisCluster``, seeded with every listed
  node. ``wire.pipelined`` groups a batch by node and talks to each node's connections
  directly (``node_connection``: ``ClusterNode.acquire_connection``/``release``, or the
  ``_free`` deque before 5.1, and the ``nodes_manager``'s slot table); the subscription
  connects to one node of the cluster (classic pub/sub is broadcast to every node:
  docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeAlias, cast
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)

CHECKED_ON = ("5.0.2", "5.3.1", "8.1.0")
PROTOCOL = 2
VERSION = redis.__version__

# What the queue code is handed: one server's client, or a cluster's.
Client: TypeAlias = Redis | RedisCluster

# -- durability ---------------------------------------------------------------------

# Commands that run a transition: with a Durability, each batch holding one is followed,
# on the same connection, by WAIT (or WAITAOF) before its replies count as acknowledged.
SCRIPT_COMMANDS = frozenset({"EVALSHA", "EVAL", "FCALL"})


class NotReplicatedError(redis.exceptions.RedisError):
    """Fewer replicas than required confirmed a write within the timeout."""


@dataclass(frozen=True, slots=True)
class Durability:
    """``TETHER_DURABILITY=replicated``: every batch of transitions is followed by
    ``WAIT replicas timeout_ms`` on its connection (with ``aof``: ``WAITAOF 1 replicas
    timeout_ms``, Redis 7.2+: the primary's AOF fsynced too, and the replicas'), and a
    batch confirmed by fewer replicas raises ``NotReplicatedError``: the writes were
    made, so the caller retries with its idempotency key rather than trusting them."""

    replicas: int = 1
    timeout_ms: int = 1000
    aof: bool = False

    def command(self) -> tuple[str | int, ...]:
        if self.aof:
            return ("WAITAOF", 1, self.replicas, self.timeout_ms)
        return ("WAIT", self.replicas, self.timeout_ms)

    def check(self, reply: Any) -> None:
        if isinstance(reply, Exception):
            raise reply
        if self.aof:
            local, confirmed = int(reply[0]), int(reply[1])
            if local < 1:
                raise NotReplicatedError("the primary's AOF was not fsynced in time")
        else:
            confirmed = int(reply)
        if confirmed < self.replicas:
            raise NotReplicatedError(
                f"{confirmed} of the {self.replicas} replica(s) required confirmed the "
                f"write within {self.timeout_ms} ms"
            )


def durability_of(client: Any) -> Durability | None:
    durability: Durability | None = getattr(client, "durability", None)
    return durability


def wants_wait(commands: Any) -> bool:
    return any(str(c[0]).upper() in SCRIPT_COMMANDS for c in commands)


class DurableRedis(Redis):
    """A single server's client whose transitions wait for replicas (``Durability``):
    a script run through redis-py (``AsyncScript``) goes out with its WAIT through
    ``wire.pipelined``, on one connection."""

    durability: Durability | None = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.durability is not None and str(args[0]).upper() in SCRIPT_COMMANDS:
            return await _durable_command(self, args)
        return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


async def _durable_command(client: Client, args: tuple[Any, ...]) -> Any:
    from tether.queue.wire import pipelined  # wire imports this module

    reply = (await pipelined(client, [args]))[0]
    if isinstance(reply, Exception):
        raise reply  # NOSCRIPT among them: AsyncScript loads the script and calls again
    return reply


CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

# -- clients ------------------------------------------------------------------------


def client_options(**options: Any) -> dict[str, Any]:
    """Keyword arguments for redis-py's ``from_url``: RESP2 and an explicit socket timeout
    (``None``, wait as long as it takes, unless the caller sets one)."""
    return {"socket_timeout": None, **options, "protocol": PROTOCOL}


def _force_protocol(pool: ConnectionPool) -> None:
    # ``from_url`` lets a ``?protocol=3`` in the URL override the keyword: ours wins.
    pool.connection_kwargs["protocol"] = PROTOCOL


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def cluster_nodes(url: str) -> tuple[str, list[tuple[str, int]]]:
    """A ``redis+cluster://`` URL as the plain URL of its first node (credentials, TLS
    and options for every node) and the address of each listed node."""
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES[parts.scheme.lower()]
    credentials, _, hosts = parts.netloc.rpartition("@")
    nodes: list[tuple[str, int]] = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{url!r}: each cluster node must be host:port, not {item!r}")
        nodes.append((host.strip("[]"), int(port)))
    first = f"{credentials}@{hosts.split(',')[0]}" if credentials else hosts.split(",")[0]
    return urlunsplit((scheme, first, parts.path, parts.query, "")), nodes


def cluster_client(
    url: str, *, kind: type[RedisCluster] | None = None, **options: Any
) -> RedisCluster:
    """A Redis Cluster client seeded with every node of a ``redis+cluster://`` URL.
    ``max_connections`` is per node (redis-py's cluster pools do not block: a caller
    past the bound gets ``MaxConnectionsError``, a ``ConnectionError``)."""
    from redis.asyncio.connection import parse_url

    first, nodes = cluster_nodes(url)
    kwargs = {**client_options(**options), **parse_url(first)}
    kwargs.pop("host", None)
    kwargs.pop("port", None)
    kwargs.pop("db", None)  # always 0 on a cluster
    if kwargs.pop("connection_class", None) is SSLConnection:
        kwargs["ssl"] = True
    kwargs.pop("timeout", None)  # a BlockingConnectionPool's: none on a cluster
    kwargs["protocol"] = PROTOCOL  # a ``?protocol=3`` in the URL: ours wins
    startup = [ClusterNode(host, port) for host, port in nodes]
    return (kind or Cluster)(startup_nodes=startup, **kwargs)


class Cluster(RedisCluster):
    """redis-py's cluster client, with its slot table loaded before a command is routed.

    redis-py (8.x) decides how to route a command before it loads the slot table: a
    command issued while the table is not loaded (a new client, or one that a failure or
    redirections closed) goes to the default node whatever its key, and is answered
    MOVED. The client follows MOVED, but every fifth one closes the client, connections
    in use by other commands included: a burst of requests on a new API replica was a
    run of 503s ("Connection closed by server"), and each close made the next burst
    route blindly again."""

    durability: Durability | None = None

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._initialize:
            await self.initialize()
        if self.durability is not None and str(args[0]).upper() in SCRIPT_COMMANDS:
            return await _durable_command(self, args)
        return await super().execute_command(*args, **kwargs)


# Connections per node beyond the bound, for the client's own slot-table refreshes.
CLUSTER_SLACK = 4
_SLACK = CLUSTER_SLACK
_HOLDING: ContextVar[bool] = ContextVar("tether_cluster_permit", default=False)


class BoundedCluster(Cluster):
    """A cluster client whose callers wait for a connection, as with a
    ``BlockingConnectionPool``: redis-py's cluster pools raise ``MaxConnectionsError``
    instead, so a burst of requests past the bound would fail. A permit is one command or
    pipeline in flight (at most one connection per node); a task that holds one (a
    pipeline retrying a redirected command on its own) does not ask again."""

    def bound(self, permits: int, timeout: float | None) -> None:
        self._permits = asyncio.Semaphore(permits)
        self._permit_timeout = timeout

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[None]:
        if _HOLDING.get():
            yield
            return
        try:
            # Not ``asyncio.wait_for``: on Python 3.11 it returns the result and drops a
            # cancellation that arrives just as the inner acquire completes, so a task
            # cancelled at shutdown (the replica's liveness beat) went on forever.
            async with asyncio.timeout(self._permit_timeout):
                await self._permits.acquire()
        except TimeoutError:
            raise redis.exceptions.ConnectionError(
                f"no Redis connection free within {self._permit_timeout} s"
            ) from None
        token = _HOLDING.set(True)
        try:
            yield
        finally:
            _HOLDING.reset(token)
            self._permits.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.permit():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        async def bounded(*args: Any, **kwargs: Any) -> Any:
            async with self.permit():
                return await execute(*args, **kwargs)

        pipe.execute = bounded  # type: ignore[method-assign]
        return pipe


@asynccontextmanager
async def cluster_permit(client: RedisCluster) -> AsyncIterator[None]:
    """Hold ``client``'s permit (``BoundedCluster``) for a round trip made by hand."""
    if isinstance(client, BoundedCluster):
        async with client.permit():
            yield
    else:
        yield


def redis_client(url: str, **options: Any) -> Client:
    """A client on its own pool, speaking RESP2 (see the module docstring); a cluster
    client for a ``redis+cluster://`` URL."""
    if is_cluster_url(url):
        return cluster_client(url, **options)
    client = Redis.from_url(url, **client_options(**options))
    _force_protocol(client.connection_pool)
    return client


def pooled_client(
    url: str,
    *,
    max_connections: int,
    timeout: float,
    durability: Durability | None = None,
    **options: Any,
) -> Client:
    """The API's shared client: at most ``max_connections`` connections (waiting up to
    ``timeout`` seconds for one) on one server; on a cluster, per node. With
    ``durability``, its transitions wait for replicas (``Durability``)."""
    if is_cluster_url(url):
        options["max_connections"] = max_connections + _SLACK
        bounded = cast(BoundedCluster, cluster_client(url, kind=BoundedCluster, **options))
        bounded.bound(max_connections, timeout)
        bounded.durability = durability
        return bounded
    pool = blocking_pool(url, max_connections=max_connections, timeout=timeout, **options)
    if durability is None:
        return Redis(connection_pool=pool)
    durable = DurableRedis(connection_pool=pool)
    durable.durability = durability
    return durable


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


async def close_client(client: Client) -> None:
    """Close ``client`` and every connection of its pool (a pool given to ``Redis`` is
    not closed with it); a cluster client closes each node's."""
    await client.aclose()
    if isinstance(client, Redis):
        await client.connection_pool.disconnect()


def subscription_connection(client: Client) -> AbstractConnection:
    """A new, unconnected connection with ``client``'s address, credentials and TLS, for
    a subscription read by hand: RESP2 and no socket timeout (the reader times its own
    reads with ``read_reply``). On a cluster, to a node picked at random among those
    known (each reconnection may pick another: a failed node is not waited for)."""
    if isinstance(client, RedisCluster):
        known = client.get_nodes() or list(client.nodes_manager.startup_nodes.values())
        node = random.choice(known)
        kwargs = {**node.connection_kwargs, "protocol": PROTOCOL, "socket_timeout": None}
        kwargs.pop("retry", None)
        conn: AbstractConnection = node.connection_class(**kwargs)
        return conn
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "protocol": PROTOCOL, "socket_timeout": None}
    conn = pool.connection_class(**kwargs)
    return conn


async def _mark_free_for_reconnect(self: ClusterNode) -> None:
    """``ClusterNode.disconnect_free_connections`` without its race: redis-py (8.x) hands
    each free connection's ``disconnect()`` to ``gather``, which runs them a loop turn
    later, after other tasks may have taken those connections from the free list and
    begun a command or the connection handshake on them; that command then fails with
    "Connection closed by server", which makes the client disconnect the node's free
    connections again: one connection error (or a slot-table refresh) under load became
    a run of 503s. Marked instead, each is reconnected by whoever takes it next
    (``disconnect_if_needed``, as redis-py's own commands and ``node_connection`` do)."""
    for conn in self._free:
        conn.mark_for_reconnect()  # type: ignore[no-untyped-call]


if hasattr(ClusterNode, "disconnect_free_connections") and hasattr(
    AbstractConnection, "mark_for_reconnect"
):
    ClusterNode.disconnect_free_connections = _mark_free_for_reconnect  # type: ignore[method-assign]


@asynccontextmanager
async def node_connection(node: ClusterNode) -> AsyncIterator[AbstractConnection]:
    """A connection to one cluster node, given back on exit; dropped (not reused with
    unread replies in flight) when the block raises or is cancelled. One marked for
    reconnection after a slot-table refresh (redis-py 8) is reconnected first, as
    redis-py's own commands do."""
    conn: AbstractConnection = node.acquire_connection()
    try:
        if hasattr(node, "disconnect_if_needed"):
            await node.disconnect_if_needed(conn)  # type: ignore[arg-type]
        yield conn
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        if hasattr(node, "release"):  # redis-py 5.1 on (it may reconnect first)
            node.release(conn)  # type: ignore[arg-type]
        else:  # before: what ClusterNode.execute_command does
            node._free.append(conn)  # type: ignore[arg-type]


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
