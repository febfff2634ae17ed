"""Encoding user payloads (inputs, results, errors) for Redis, with the size limit."""

from __future__ import annotations

from typing import Any

import orjson

from tether.errors import PayloadTooLarge, ValidationFailed


def dump_payload(value: Any, field: str, limit: int) -> str:
    """``value`` as JSON text; a clear error naming ``field`` if it is not JSON or is
    over ``limit`` bytes."""
    try:
        data = orjson.dumps(value)
    except TypeError as exc:
        raise ValidationFailed(
            f"{field} is not JSON-serializable: {exc}", details={"field": field}
        ) from exc
    if len(data) > limit:
        raise PayloadTooLarge(
            f"{field} is {len(data)} bytes; the limit is {limit}",
            details={"field": field, "size": len(data), "limit": limit},
        )
    return data.decode()
