"""What ``tether/queue/redis_py.py`` relies on inside redis-py still holds.

Each test names the piece it guards: when a new redis-py release changes one, the failure
says which, and on which versions it was last checked."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError

from tether.queue import redis_py
from tether.redis_server import free_port


def changed(piece: str, what: str) -> str:
    return (
        f"redis-py {redis_py.VERSION} changed what tether/queue/redis_py.py's {piece} relies "
        f"on: {what} (checked on {', '.join(redis_py.CHECKED_ON)})"
    )


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    c = redis_py.redis_client(redis_url + "?protocol=3", decode_responses=True)
    yield c
    await c.aclose()


async def test_clients_speak_resp2_even_when_the_url_asks_for_resp3(client: Redis) -> None:
    info = await client.client_info()
    assert str(info["resp"]) == "2", changed("redis_client", "the protocol keyword")


@pytest.mark.single_node(
    reason="reads one server's ConnectionPool (the cluster's pieces: test_redis_cluster.py)"
)
async def test_clients_have_no_socket_timeout_unless_asked(client: Redis) -> None:
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs.get("socket_timeout") is None, changed("client_options", "socket_timeout")


@pytest.mark.single_node(
    reason="reads one server's ConnectionPool (the cluster's pieces: test_redis_cluster.py)"
)
async def test_a_pooled_connection_is_taken_and_given_back(client: Redis) -> None:
    params = inspect.signature(type(client.connection_pool).get_connection).parameters
    assert "command_name" in params or len(params) == 1, changed(
        "pooled_connection", f"get_connection's signature is now {list(params)}"
    )
    async with redis_py.pooled_connection(client) as conn:
        await conn.send_command("PING")
        assert await conn.read_response() == "PONG"
    async with redis_py.pooled_connection(client) as again:
        assert again is conn, changed("pooled_connection", "pool.release does not reuse")


@pytest.mark.single_node(
    reason="reads one server's ConnectionPool (the cluster's pieces: test_redis_cluster.py)"
)
async def test_a_subscription_connection_copies_the_pool_settings_in_resp2(
    client: Redis,
) -> None:
    pool = client.connection_pool
    assert isinstance(pool.connection_kwargs, dict), changed("subscription", "connection_kwargs")
    conn = redis_py.subscription_connection(client)
    assert isinstance(conn, pool.connection_class), changed("subscription", "connection_class")
    assert (conn.host, conn.port) == (
        pool.connection_kwargs["host"],
        pool.connection_kwargs["port"],
    )
    assert (conn.protocol, conn.socket_timeout) == (2, None), changed(
        "subscription_connection", "protocol or socket_timeout"
    )
    await conn.disconnect()


async def test_a_timed_read_returns_none_and_leaves_the_connection_usable(client: Redis) -> None:
    conn = redis_py.subscription_connection(client)
    await conn.connect()
    try:
        await conn.send_command("SUBSCRIBE", "tether-internals-test")
        assert (await redis_py.read_reply(conn, 1.0))[0] == "subscribe"
        assert await redis_py.read_reply(conn, 0.05) is None, changed(
            "read_reply", "read_response(timeout=) no longer returns None on a timeout"
        )
        await conn.send_command("PING")
        assert (await redis_py.read_reply(conn, 1.0))[0] == "pong", changed(
            "read_reply", "the connection is unusable after a timed-out read"
        )
    finally:
        await conn.disconnect()


def test_connections_still_have_what_fastpack_reads() -> None:
    conn = Connection()
    assert isinstance(conn._buffer_cutoff, int), changed("FastPack", "_buffer_cutoff")
    assert hasattr(conn.encoder, "encoding") and hasattr(conn.encoder, "encoding_errors"), changed(
        "FastPack", "the connection's encoder"
    )


async def test_a_blocking_pool_fails_at_once_while_redis_is_unreachable() -> None:
    # redis-py 5.0.1's BlockingConnectionPool connected while holding its lock and, on a
    # refused connection, released the connection under the same lock: the task waited on
    # itself until the pool's timeout (redis-py issue #3056, fixed in 5.0.2). Every API
    # request then took the pool's timeout to answer 503, or longer under load.
    pool = redis_py.blocking_pool(
        f"redis://127.0.0.1:{free_port()}/0", max_connections=4, timeout=30
    )
    client = Redis(connection_pool=pool)
    try:
        replies = await asyncio.wait_for(
            asyncio.gather(*(client.ping() for _ in range(3)), return_exceptions=True), 5
        )
    finally:
        await client.aclose()
    assert all(isinstance(r, RedisConnectionError) for r in replies), replies
