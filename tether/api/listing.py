"""The query of a listing (``GET /v1/jobs``, ``GET /v1/runs``): the cursor of the page to
read and the filters every listing shares (creation time, user tags)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from litestar.params import Parameter

from tether.errors import ValidationFailed
from tether.limits import MAX_LIST
from tether.protocol import ID_PATTERN
from tether.queue.index import Cursor


@dataclass(frozen=True, slots=True)
class Listing:
    cursor: Cursor | None
    created_after_ms: int | None
    created_before_ms: int | None
    tags: dict[str, str]


# An RFC 3339 / ISO 8601 time, as the OpenAPI document declares it: a bare number such as
# "0.0" is not one (Litestar would read it as seconds since 1970).
TIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?)?$"
)


def _ms(text: str | None, field: str) -> int | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            f"{field}: {text[:64]!r} is not an ISO 8601 time", details={"field": field}
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # naive means UTC, as everywhere in the API
    return round(value.timestamp() * 1000)


def listing(
    cursor: str | None,
    created_after: str | None,
    created_before: str | None,
    tag: list[str] | None,
) -> Listing:
    tags: dict[str, str] = {}
    for item in tag or []:
        key, sep, value = item.partition(":")
        if not sep or not ID_PATTERN.match(key) or len(key) > 64:
            raise ValidationFailed(
                f"tag: {item!r} is not key:value", details={"field": "tag", "value": item[:200]}
            )
        tags[key] = value
    return Listing(
        Cursor.decode(cursor) if cursor else None,
        _ms(created_after, "created_after"),
        _ms(created_before, "created_before"),
        tags,
    )


# The query parameters every listing route takes, declared once so that the routes and
# their OpenAPI documents cannot drift apart.
LimitParam = Annotated[int, Parameter(ge=1, le=MAX_LIST, description="at most this many")]
CursorParam = Annotated[
    str | None, Parameter(description="the next_cursor of the previous page", max_length=240)
]
CreatedAfterParam = Annotated[
    str | None,
    Parameter(
        description="only those created at or after this time (ISO 8601)",
        pattern=TIME_PATTERN,
        max_length=40,
    ),
]
CreatedBeforeParam = Annotated[
    str | None,
    Parameter(
        description="only those created before this time (ISO 8601)",
        pattern=TIME_PATTERN,
        max_length=40,
    ),
]
# Entries one timeline read returns (GET /v1/jobs/{id}/timeline, /v1/runs/{id}/timeline).
TimelineLimitParam = Annotated[int, Parameter(ge=1, le=10_000)]
TagParam = Annotated[
    list[str] | None,
    Parameter(description="only those tagged key:value (repeat for several: all must match)"),
]
