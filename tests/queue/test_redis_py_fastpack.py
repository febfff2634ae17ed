"""The API's command packer puts the same bytes on the wire as redis-py's."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from tether.queue.redis_py import (
    FastConnection,
    FastSSLConnection,
    FastUnixConnection,
    fast_connection_class,
)

COMMANDS: list[tuple[Any, ...]] = [
    ("PING",),
    ("EVALSHA", "a" * 40, 2, "{t:0}:job:x", "{t:0}:q:f", "{t:0}:", "x", 0, -17, 300000),
    ("HSET", "k", "field", "ünïcødé ✓ 日本"),
    ("SET", "k", b"\x00\xffraw bytes"),
    ("SET", "k", 3.25),
    ("SET", "k", "x" * 100_000),  # over the buffer cutoff: sent as its own buffer
    ("SET", "k", memoryview(b"a view")),
    ("CLIENT SETNAME", "tether-api"),  # a command name with a space
    ("SET", "k", ""),
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: str(a[0]))
def test_a_packed_command_is_byte_for_byte_what_redis_py_sends(args: tuple[Any, ...]) -> None:
    ours = b"".join(bytes(part) for part in FastConnection().pack_command(*args))
    theirs = b"".join(bytes(part) for part in Connection().pack_command(*args))
    assert ours == theirs


def test_an_argument_redis_py_refuses_is_refused_the_same_way() -> None:
    with pytest.raises(DataError):
        FastConnection().pack_command("SET", "k", True)


def test_every_connection_kind_has_a_fast_twin() -> None:
    assert fast_connection_class(Connection) is FastConnection
    assert fast_connection_class(SSLConnection) is FastSSLConnection
    assert fast_connection_class(UnixDomainSocketConnection) is FastUnixConnection
