"""One exception hierarchy for tether, mapped to one HTTP error shape.

    TetherError
    ├── InvalidRequest            400  the request cannot be understood
    │   └── ValidationFailed      422  a field has the wrong type or value
    ├── PayloadTooLarge           413  input, result or body over the size limit
    ├── NotFound                  404  no such job, run, machine or function
    ├── Conflict                  409  the request clashes with the current state
    │   ├── IdempotencyConflict   409  the key already names a different request
    │   └── InvalidTransition     409  e.g. cancelling a finished job
    ├── LeaseNotHeld              409  stale or unknown fencing token: result rejected
    ├── RedisUnavailable          503  Redis cannot be reached
    │   └── RedisOutOfMemory      503  Redis refuses writes (maxmemory, noeviction)
    └── ApiUnavailable            503  the control plane's HTTP API cannot be reached

Foreign errors (redis-py, httpx) are translated at one boundary each and re-raised with
``from exc``; nothing else leaks.
"""

from __future__ import annotations

from typing import Any


class TetherError(Exception):
    """Base class of every error tether raises on purpose."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        """The body of the HTTP error: ``{"error": {"code", "message", "details"}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidRequest(TetherError):
    """The request cannot be understood (malformed JSON, bad path or query)."""

    status_code = 400
    code = "invalid_request"


class ValidationFailed(InvalidRequest):
    """A field has the wrong type or value; details name the fields."""

    status_code = 422
    code = "validation_failed"


class PayloadTooLarge(TetherError):
    """An input, result or request body is over its size limit."""

    status_code = 413
    code = "payload_too_large"


class NotFound(TetherError):
    """No such job, run, machine or function."""

    status_code = 404
    code = "not_found"


class Conflict(TetherError):
    """The request clashes with the current state of a record."""

    status_code = 409
    code = "conflict"


class IdempotencyConflict(Conflict):
    """The idempotency key (or id) already names a request for something else."""

    code = "idempotency_conflict"


class InvalidTransition(Conflict):
    """The record is not in a state that allows this change."""

    code = "invalid_transition"


class LeaseNotHeld(TetherError):
    """The fencing token is stale or unknown: the result was not committed."""

    status_code = 409
    code = "lease_not_held"


class RedisUnavailable(TetherError):
    """Redis cannot be reached; nothing was changed."""

    status_code = 503
    code = "redis_unavailable"


class RedisOutOfMemory(RedisUnavailable):
    """Redis refuses writes (maxmemory reached under noeviction); nothing was changed."""

    code = "redis_out_of_memory"


class ApiUnavailable(TetherError):
    """The control plane's HTTP API cannot be reached."""

    status_code = 503
    code = "api_unavailable"


ERRORS_BY_CODE: dict[str, type[TetherError]] = {
    cls.code: cls
    for cls in (
        TetherError,
        InvalidRequest,
        ValidationFailed,
        PayloadTooLarge,
        NotFound,
        Conflict,
        IdempotencyConflict,
        InvalidTransition,
        LeaseNotHeld,
        RedisUnavailable,
        RedisOutOfMemory,
        ApiUnavailable,
    )
}


def error_from_body(status: int, body: Any) -> TetherError:
    """Rebuild the typed error from an HTTP error body (used by the client)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return TetherError(f"HTTP {status}: {body!r}")
    cls = ERRORS_BY_CODE.get(str(error.get("code")), TetherError)
    return cls(str(error.get("message", "")), details=error.get("details") or {})
