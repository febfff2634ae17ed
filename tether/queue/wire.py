"""Send a batch of commands in one round trip, packed by hiredis.

redis-py's asyncio connections pack commands in Python, re-joining a growing buffer for
every argument: for a batch of 500 jobs (thousands of arguments) that was the client's
largest cost. hiredis packs the same bytes in C, about seven times faster. Replies are
read with the connection's own parser, so decoding and error classes (NoScriptError,
OutOfMemoryError, ...) are exactly redis-py's.

On Redis Cluster a batch is grouped by the node that serves each command's first key
(every key of one script shares a hash tag, so its first key names its slot) and each
node gets its group in one pipelined round trip, all nodes at once: a batch across P
partitions on N nodes costs N round trips in parallel, not P. A command answered MOVED
(a replica promoted, slots moved) makes the client refresh its slot table and is sent
again to the node that now serves it. ASK (a slot half-way through a migration) is not
followed: its error is the command's reply, as for any error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import hiredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import MovedError, ResponseError, TryAgainError

from tether.queue.redis_py import (
    Client,
    Durability,
    cluster_permit,
    durability_of,
    node_connection,
    pooled_connection,
    wants_wait,
)

# Times a command is sent again after a redirection before its error is returned.
_REDIRECTS = 3


async def pipelined(redis: Client, commands: Sequence[Sequence[Any]]) -> list[Any]:
    """Replies in order; a command's error reply is returned in its place, not raised.

    A connection or protocol failure raises, and the connection is dropped rather than
    reused with unread replies in flight (a cancelled caller too).
    """
    durability = durability_of(redis)
    if durability is not None and not wants_wait(commands):
        durability = None
    if isinstance(redis, RedisCluster):
        async with cluster_permit(redis):
            return await _cluster_pipelined(redis, commands, durability)
    async with pooled_connection(redis) as conn:
        return await _exchange(conn, commands, durability)


async def _exchange(
    conn: AbstractConnection, commands: Sequence[Sequence[Any]], durability: Durability | None
) -> list[Any]:
    """Send ``commands`` on ``conn`` in one write and read their replies; with
    ``durability``, a WAIT after them on the same connection (it counts the replicas
    that have this connection's writes) whose shortfall raises NotReplicatedError."""
    sent = [*commands, durability.command()] if durability is not None else commands
    payload = b"".join([hiredis.pack_command(tuple(command)) for command in sent])
    await conn.send_packed_command(payload)
    replies: list[Any] = []
    for _ in sent:
        try:
            replies.append(await conn.read_response())
        except ResponseError as exc:
            replies.append(exc)
    if durability is not None:
        waited = replies.pop()
        # Refused commands (NOSCRIPT: sent again once loaded, and waited for then) wrote
        # nothing; any other reply may stand for a write the replicas must confirm.
        if not all(isinstance(reply, Exception) for reply in replies):
            durability.check(waited)
    return replies


def first_key(command: Sequence[Any]) -> Any:
    """The key that routes ``command``: EVALSHA/EVAL name it after the key count."""
    if str(command[0]).upper() in ("EVALSHA", "EVAL"):
        if int(command[2]) < 1:
            raise ValueError("a script called on a cluster must name at least one key")
        return command[3]
    return command[1]


async def _cluster_pipelined(
    cluster: RedisCluster, commands: Sequence[Sequence[Any]], durability: Durability | None = None
) -> list[Any]:
    if cluster._initialize:  # first use, or a failure asked for a new slot table
        await cluster.initialize()
    replies: list[Any] = [None] * len(commands)
    pending = list(range(len(commands)))
    for attempt in range(_REDIRECTS + 1):
        # By node name: redis-py's ClusterNode is not hashable before 5.1.
        groups: dict[str, tuple[ClusterNode, list[int]]] = {}
        manager = cluster.nodes_manager
        for i in pending:
            node = manager.get_node_from_slot(cluster.keyslot(first_key(commands[i])))
            groups.setdefault(node.name, (node, []))[1].append(i)
        try:
            answers = await asyncio.gather(
                *(
                    _send(node, [commands[i] for i in group], durability)
                    for node, group in groups.values()
                )
            )
        except Exception:
            # A node is gone (failed over?): the next call starts from a fresh table.
            cluster._initialize = True
            raise
        pending = []
        for (_, group), group_replies in zip(groups.values(), answers, strict=True):
            for i, reply in zip(group, group_replies, strict=True):
                replies[i] = reply
                if isinstance(reply, (MovedError, TryAgainError)):
                    pending.append(i)
        if not pending or attempt == _REDIRECTS:
            break
        # Slots moved: one new slot table for every redirected command.
        await cluster.nodes_manager.initialize()
    return replies


async def _send(
    node: ClusterNode, commands: Sequence[Sequence[Any]], durability: Durability | None = None
) -> list[Any]:
    async with node_connection(node) as conn:
        return await _exchange(conn, commands, durability)
