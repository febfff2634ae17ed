"""Reading the time-ordered indexes (``{t:p}:jobs``, ``{t:p}:runs``) newest first."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from redis.asyncio import Redis

# A listing reads at most this many ids per wanted record, then filters them.
SCAN_FACTOR = 20


async def newest_ids(
    redis: Redis, index_key: str, *, limit: int, before_ms: int | None
) -> list[str]:
    """Ids scored before ``before_ms`` (all, if None), newest first, at most
    ``limit * SCAN_FACTOR`` of them."""
    ids = cast(
        list[str],
        await redis.zrange(
            index_key,
            "+inf" if before_ms is None else f"({before_ms}",
            "-inf",
            byscore=True,
            desc=True,
            offset=0,
            num=limit * SCAN_FACTOR,
        ),
    )
    return ids


async def newest_records(
    redis: Redis,
    index_key: str,
    record_key: Callable[[str], str],
    *,
    limit: int,
    before_ms: int | None,
) -> list[tuple[str, dict[str, str]]]:
    """The newest ids in ``index_key`` (see ``newest_ids``) with their hashes, read in
    one round trip; ids whose record already expired are left out."""
    ids = await newest_ids(redis, index_key, limit=limit, before_ms=before_ms)
    if not ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for record_id in ids:
            pipe.hgetall(record_key(record_id))
        rows: list[dict[str, str]] = await pipe.execute()
    return [(record_id, row) for record_id, row in zip(ids, rows, strict=True) if row]
