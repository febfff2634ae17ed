"""Send a batch of commands in one round trip, packed by hiredis.

redis-py's asyncio connections pack commands in Python, re-joining a growing buffer for
every argument: for a batch of 500 jobs (thousands of arguments) that was the client's
largest cost. hiredis packs the same bytes in C, about seven times faster. Replies are
read with the connection's own parser, so decoding and error classes (NoScriptError,
OutOfMemoryError, ...) are exactly redis-py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from tether.queue.redis_py import pooled_connection


async def pipelined(redis: Redis, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """Replies in order; a command's error reply is returned in its place, not raised.

    A connection or protocol failure raises, and the connection is dropped rather than
    reused with unread replies in flight (a cancelled caller too).
    """
    payload = b"".join([hiredis.pack_command(tuple(command)) for command in commands])
    async with pooled_connection(redis) as conn:
        await conn.send_packed_command(payload)
        replies: list[Any] = []
        for _ in commands:
            try:
                replies.append(await conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
    return replies
