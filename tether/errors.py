"""One exception hierarchy for tether, mapped to one HTTP error shape.

    TetherError
    ├── InvalidRequest            400  the request cannot be understood
    │   ├── RequestTimeout        408  headers or body did not arrive in time
    │   └── ValidationFailed      422  a field has the wrong type or value
    ├── PayloadTooLarge           413  input, result or body over the size limit
    ├── Unauthorized              401  no API key, or one that is wrong or revoked
    ├── Forbidden                 403  the key's role or namespace does not allow this
    ├── UnsupportedMediaType      415  a request body that is not application/json
    ├── CrossOriginRefused        403  a browser request from an origin not allowed
    ├── NotFound                  404  no such job, run, machine or function
    │   └── UnknownFunction       404  no machine ever registered this function
    ├── Conflict                  409  the request clashes with the current state
    │   ├── IdempotencyConflict   409  the key already names a job of another function
    │   │   └── IdempotencyKeyReused 409  ... a job of this function with another input
    │   ├── InvalidTransition     409  e.g. cancelling a finished job
    │   └── RegistryFull          409  the function registry is at its limit
    ├── LeaseNotHeld              409  stale or unknown fencing token: result rejected
    ├── RedisUnavailable          503  Redis cannot be reached
    │   └── RedisOutOfMemory      503  Redis refuses writes (maxmemory, noeviction)
    ├── ApiUnavailable            503  the control plane's HTTP API cannot be reached
    ├── TooManyStreams            503  this process serves its most event streams
    ├── ConfigurationError        -    bad worker settings or client configuration
    ├── JobFailed                 -    a job the caller waited for failed (client)
    ├── RunFailed                 -    a run the caller waited for failed (client)
    └── ResultTimeout             -    no result within the caller's timeout (client)

The last four are raised locally (by workers and clients), never sent over HTTP.

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


class Unauthorized(TetherError):
    """No API key, or one that is wrong or revoked."""

    status_code = 401
    code = "unauthorized"


class Forbidden(TetherError):
    """The key is valid, but its role (or the machine id it acts as, or the functions it
    may serve) does not allow this request."""

    status_code = 403
    code = "forbidden"


class UnsupportedMediaType(TetherError):
    """A request body that is not JSON (``Content-Type: application/json``): refused so
    that a web page cannot send one cross-site without the browser asking first."""

    status_code = 415
    code = "unsupported_media_type"


class CrossOriginRefused(TetherError):
    """A browser request changing state from an origin that is neither the API's own nor
    in ``TETHER_CORS_ORIGINS``."""

    status_code = 403
    code = "cross_origin_refused"


class NotFound(TetherError):
    """No such job, run, machine or function."""

    status_code = 404
    code = "not_found"


class UnknownFunction(NotFound):
    """No machine has ever registered this function, so no job of it could run."""

    code = "unknown_function"


class Conflict(TetherError):
    """The request clashes with the current state of a record."""

    status_code = 409
    code = "conflict"


class IdempotencyConflict(Conflict):
    """The idempotency key (or id) already names a request for something else."""

    code = "idempotency_conflict"


class IdempotencyKeyReused(IdempotencyConflict):
    """The idempotency key (or id) already names a job of this function whose input
    differs: the answer names that job (``details.id``) instead of passing it off as the
    one asked for."""

    code = "idempotency_key_reused"


class InvalidTransition(Conflict):
    """The record is not in a state that allows this change."""

    code = "invalid_transition"


class RegistryFull(Conflict):
    """Registering these functions would take the registry past its limit
    (``tether.limits.MAX_REGISTERED_FUNCTIONS``); nothing was registered."""

    code = "registry_full"


class RequestTimeout(InvalidRequest):
    """The request's headers or body did not arrive in time (a stalled client)."""

    status_code = 408
    code = "request_timeout"


class LeaseNotHeld(TetherError):
    """This machine does not hold the job's lease with this token (stale, unknown, or
    another machine's): nothing was committed."""

    status_code = 409
    code = "lease_not_held"


class RedisUnavailable(TetherError):
    """Redis cannot be reached; nothing was changed."""

    status_code = 503
    code = "redis_unavailable"


class RedisOutOfMemory(RedisUnavailable):
    """Redis refuses writes (maxmemory reached under noeviction); nothing was changed."""

    code = "redis_out_of_memory"


class NotReplicated(RedisUnavailable):
    """With ``TETHER_DURABILITY=replicated``: the change was made on the primary, but
    fewer of its replicas than required confirmed it in time (``WAIT``/``WAITAOF``), so
    a failover could still lose it. Retrying with the same idempotency key is safe."""

    code = "not_replicated"


class ApiUnavailable(TetherError):
    """The control plane's HTTP API cannot be reached."""

    status_code = 503
    code = "api_unavailable"


class TooManyStreams(TetherError):
    """This API process serves as many event streams (GET /v1/events) as it may."""

    status_code = 503
    code = "too_many_streams"


class ConfigurationError(TetherError):
    """Worker settings or client configuration are invalid (raised locally)."""

    code = "configuration_error"


class JobFailed(TetherError):
    """A job the caller waited for ended failed, dead or cancelled; ``job`` is its record
    (a ``tether.protocol.JobOut``) and ``error`` the job's own error, if any."""

    code = "job_failed"

    def __init__(
        self, message: str, *, job: Any, error: Any = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.job = job
        self.error = error


class RunFailed(TetherError):
    """A run the caller waited for ended failed or cancelled; ``run`` is its record
    (a ``tether.protocol.RunOut``) and ``error`` the run's own error, if any."""

    code = "run_failed"

    def __init__(
        self, message: str, *, run: Any, error: Any = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details=details)
        self.run = run
        self.error = error


class ResultTimeout(TetherError, TimeoutError):
    """The job or run did not finish within the wait the caller gave (it goes on)."""

    code = "result_timeout"


class NoLiveMachine(ResultTimeout):
    """``call`` gave up early: its job is still queued and no live machine serves its
    function (the job stays queued and runs once a machine serving it starts)."""

    code = "no_live_machine"


ERRORS_BY_CODE: dict[str, type[TetherError]] = {
    cls.code: cls
    for cls in (
        TetherError,
        InvalidRequest,
        RequestTimeout,
        ValidationFailed,
        PayloadTooLarge,
        Unauthorized,
        Forbidden,
        UnsupportedMediaType,
        CrossOriginRefused,
        NotFound,
        UnknownFunction,
        Conflict,
        IdempotencyConflict,
        IdempotencyKeyReused,
        InvalidTransition,
        RegistryFull,
        LeaseNotHeld,
        RedisUnavailable,
        RedisOutOfMemory,
        ApiUnavailable,
        TooManyStreams,
    )
}


def error_from_body(status: int, body: Any) -> TetherError:
    """Rebuild the typed error from an HTTP error body (used by the client)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return TetherError(f"HTTP {status}: {body!r}")
    cls = ERRORS_BY_CODE.get(str(error.get("code")), TetherError)
    return cls(str(error.get("message", "")), details=error.get("details") or {})
