"""Every error the API answers, in one shape: ``{"error": {"code", "message", "details"}}``.

Three sources, one table each way:
- ``TetherError`` (ours): its own ``status_code`` and ``code``;
- Litestar's ``HTTPException`` (bad JSON, failed validation, unknown route, wrong method,
  oversized body): mapped by status, validation errors listing the fields they name;
- anything else is a bug: logged with its traceback, answered 500 ``internal_error``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.types import ExceptionHandlersMap

from tether.errors import TetherError
from tether.limits import ID_RULE
from tether.protocol import ErrorBody

log = logging.getLogger("tether.api")

CODES_BY_STATUS: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed JSON, or a body that is not a JSON object (invalid_request)",
    401: "No API key, or a wrong or revoked one (unauthorized)",
    403: "The key's role, machine binding or function allow-list forbids this (forbidden), "
    "or a browser request from a foreign origin (cross_origin_refused)",
    404: "No such record (not_found, unknown_function)",
    409: "Conflicts with the record's state (idempotency_conflict, invalid_transition, "
    "registry_full, lease_not_held)",
    413: "Request body or payload over its limit (payload_too_large)",
    415: "A request body that is not application/json (unsupported_media_type)",
    422: "A field or path parameter is missing, unknown, or has the wrong type or value "
    "(validation_failed)",
    503: "Redis unreachable or out of memory; nothing changed (redis_unavailable, ...)",
}

# What any request that may change something can be answered (api/browsers.py, body size).
_CHANGES = (403, 413, 415)


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the errors a GET handler can answer, all in the one error shape
    (400, 401, 403, 422 and 503 are possible everywhere, so they are always included)."""
    wanted = sorted({400, 401, 403, 422, 503, *statuses})
    return {
        # No generated examples: Litestar would make up random codes and messages.
        status: ResponseSpec(
            data_container=ErrorBody,
            description=_DESCRIPTIONS[status],
            generate_examples=False,
        )
        for status in wanted
    }


def also_ok(model: type[Any], description: str) -> dict[int, ResponseSpec]:
    """The 200 of a POST that answers 201 when it creates and 200 when it finds."""
    return {200: ResponseSpec(data_container=model, description=description)}


def change_error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """``error_responses`` of a handler that may change something (POST): also 403 for a
    foreign origin, 413 for a body over the limit and 415 for one that is not JSON."""
    return error_responses(*_CHANGES, *statuses)


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response[bytes]:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return Response(content=orjson.dumps(body), status_code=status, media_type=MediaType.JSON)


def _field_errors(extra: Any) -> list[dict[str, str]]:
    """Litestar's validation ``extra`` (a list of {"key", "message", "source"}) as ours."""
    if not isinstance(extra, list):
        return []
    fields: list[dict[str, str]] = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "")).removeprefix("Value error, ")
        entry = {"field": str(item.get("key") or ""), "message": message}
        if item.get("source") is not None:
            source = item["source"]
            entry["source"] = str(getattr(source, "value", source))
            if entry["source"] == "path" and ("regex" in message or "length" in message):
                # An id in the path (api/params.py): say the rule, not the regex.
                entry["message"] = f"must be {ID_RULE}"
        fields.append(entry)
    return fields


def _is_decode_error(detail: str) -> bool:
    lowered = detail.lower()
    return any(word in lowered for word in ("json", "truncated", "malformed", "decode"))


def _validation_error(exc: ValidationException) -> Response[bytes]:
    fields = _field_errors(exc.extra)
    if [(f["field"], f.get("source")) for f in fields] == [("data", "body")]:
        # Litestar's way of saying the body is absent altogether.
        return error_response(400, "invalid_request", "a JSON object body is required")
    named = [f for f in fields if f["field"]]
    if not named:
        # Nothing to name: the body as a whole is not what the endpoint takes.
        message = fields[0]["message"] if fields else str(exc.detail)
        return error_response(
            400,
            "invalid_request",
            f"the request body must be a JSON object: {message}",
            {"fields": fields},
        )
    first = named[0]
    more = f" (and {len(named) - 1} more)" if len(named) > 1 else ""
    details: dict[str, Any] = {"fields": named}
    if first.get("source") == "path":
        details["field"] = first["field"]  # a bad id in the path, named as the engine does
    return error_response(
        422, "validation_failed", f"{first['field']}: {first['message']}{more}", details
    )


def handle_tether_error(request: Request[Any, Any, Any], exc: TetherError) -> Response[bytes]:
    response = error_response(exc.status_code, exc.code, exc.message, exc.details)
    if exc.status_code == 401:
        # RFC 9110: a 401 names the scheme that would get in.
        response.headers["www-authenticate"] = 'Bearer realm="tether"'
    return response


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if isinstance(exc, ValidationException):
        return _validation_error(exc)
    status = exc.status_code
    code = CODES_BY_STATUS.get(status, "http_error")
    details: dict[str, Any] = {}
    if status == 404:
        message = f"no route {request.method} {request.url.path}"
        details = {"path": request.url.path}
    elif status == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
        details = {"method": request.method, "path": request.url.path}
    elif status == 413:
        limit = request.app.state.get("max_body_size")
        message = f"the request body is over the limit of {limit} bytes"
        details = {"limit": limit}
    elif status == 400 and _is_decode_error(str(exc.detail)):
        message = f"the request body is not valid JSON: {exc.detail}"
    else:
        message = str(exc.detail)
    response = error_response(status, code, message, details)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def handle_undecodable_body(
    request: Request[Any, Any, Any], exc: UnicodeDecodeError | RecursionError
) -> Response[bytes]:
    # Raised while decoding a request body: bytes that are not UTF-8, or JSON nested
    # deeper than the decoder goes. Bad input, not a bug.
    if isinstance(exc, UnicodeDecodeError):
        message = f"the request body is not valid UTF-8: {exc.reason} at byte {exc.start}"
    else:
        message = "the request body is nested too deeply"
    return error_response(400, "invalid_request", message)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500,
        "internal_error",
        "the server hit an unexpected error; it was logged",
        {"type": type(exc).__name__},
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    TetherError: handle_tether_error,
    HTTPException: handle_http_exception,
    UnicodeDecodeError: handle_undecodable_body,
    RecursionError: handle_undecodable_body,
    Exception: handle_unexpected,
}
