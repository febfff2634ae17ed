"""Listing the time-ordered indexes (``{t:p}:jobs``, ``{t:p}:runs``) newest first, in
pages that resume at a cursor.

The order is (creation ms, id), both descending, merged over every partition; a cursor
names the last record a page looked at, so the next page starts right after it and no
record is ever skipped, however old, and however few of the records match the filters.
A page reads at most ``SCAN_BUDGET`` records: when the filters are selective, it may hold
fewer than ``limit`` records and still give a cursor (keep paging until it is None).
Cost per page: per partition, one ZRANGE (plus one for records sharing the cursor's
millisecond), and one HGETALL per record read, pipelined in one round trip per
``CHUNK`` records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from tether.errors import ValidationFailed
from tether.queue.redis_py import Client

SCAN_BUDGET = 5000  # records read per page at most, matching or not
CHUNK = 200  # records read per round trip


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the previous page stopped: the creation ms and id of its last record."""

    ms: int
    id: str

    def encode(self) -> str:
        return f"{self.ms}-{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        ms, sep, record_id = text.partition("-")
        if not sep or not ms.isdigit() or not record_id or len(text) > 240:
            raise ValidationFailed(
                "cursor: not a cursor this API gave out", details={"field": "cursor"}
            )
        return cls(int(ms), record_id)


@dataclass(frozen=True, slots=True)
class Source:
    """One partition's index and how to name a record of it."""

    index: str
    record: Callable[[str], str]


async def _next_ids(
    redis: Client,
    sources: Sequence[Source],
    after: Cursor | None,
    top_ms: int | None,
    floor_ms: int | None,
    count: int,
) -> list[tuple[int, str, Source]]:
    """The next ``count`` (ms, id, source) after ``after``, newest first, merged."""
    floor = "-inf" if floor_ms is None else str(floor_ms)
    upper = "+inf" if top_ms is None else str(top_ms)
    if after is not None:  # exclusive: records of its own ms are fetched apart
        upper = f"({after.ms}"
    async with redis.pipeline(transaction=False) as pipe:
        for source in sources:
            if after is not None:
                pipe.zrange(source.index, after.ms, after.ms, byscore=True)
            pipe.zrange(
                source.index,
                upper,
                floor,
                byscore=True,
                desc=True,
                offset=0,
                num=count,
                withscores=True,
            )
        replies = await pipe.execute()
    found: list[tuple[int, str, Source]] = []
    at = 0
    for source in sources:
        if after is not None:
            # Records of the cursor's own millisecond that come after it (id descending).
            if floor_ms is None or after.ms >= floor_ms:
                found += [(after.ms, i, source) for i in replies[at] if i < after.id]
            at += 1
        found += [(int(score), i, source) for i, score in replies[at]]
        at += 1
    found.sort(key=lambda f: (f[0], f[1]), reverse=True)
    return found[:count]


async def page(
    redis: Client,
    sources: Sequence[Source],
    keep: Callable[[str, dict[str, str]], bool],
    *,
    limit: int,
    cursor: Cursor | None = None,
    created_before_ms: int | None = None,
    created_after_ms: int | None = None,
    budget: int = SCAN_BUDGET,
) -> tuple[list[tuple[str, dict[str, str]]], Cursor | None]:
    """Up to ``limit`` (id, record) that ``keep`` accepts, newest first, from after
    ``cursor``, created in [``created_after_ms``, ``created_before_ms``); and the cursor
    of the next page (None: nothing more to read). Records whose hash is gone (expired)
    are skipped."""
    found: list[tuple[str, dict[str, str]]] = []
    top = None if created_before_ms is None else created_before_ms - 1
    position = cursor
    read = 0
    while read < budget:
        batch = await _next_ids(
            redis, sources, position, top, created_after_ms, min(CHUNK, budget - read)
        )
        if not batch:
            return found, None
        async with redis.pipeline(transaction=False) as pipe:
            for _, record_id, source in batch:
                pipe.hgetall(source.record(record_id))
            rows: list[dict[str, str]] = await pipe.execute()
        for (ms, record_id, _), row in zip(batch, rows, strict=True):
            read += 1
            position = Cursor(ms, record_id)
            if row and keep(record_id, row):
                found.append((record_id, row))
                if len(found) == limit:
                    return found, position
    return found, position


def tags_match(raw: str | None, wanted: dict[str, str]) -> bool:
    """Whether a record's tags (its ``tags`` field, JSON) hold every wanted key: value."""
    if not wanted:
        return True
    if not raw:
        return False
    tags = orjson.loads(raw)
    return isinstance(tags, dict) and all(tags.get(k) == v for k, v in wanted.items())
