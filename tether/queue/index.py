"""Reading the time-ordered indexes (``{t:p}:jobs``, ``{t:p}:runs``) newest first."""

from __future__ import annotations

from redis.asyncio import Redis

# A listing reads at most this many ids per wanted record, then filters them.
SCAN_FACTOR = 20


async def newest_ids(
    redis: Redis, index_key: str, *, limit: int, before_ms: int | None
) -> list[str]:
    """Ids scored before ``before_ms`` (all, if None), newest first, at most
    ``limit * SCAN_FACTOR`` of them."""
    ids: list[str] = await redis.zrange(
        index_key,
        "+inf" if before_ms is None else f"({before_ms}",  # type: ignore[arg-type]
        "-inf",  # type: ignore[arg-type]
        byscore=True,
        desc=True,
        offset=0,
        num=limit * SCAN_FACTOR,
    )
    return ids
