"""What keeps a web page from driving the API through a developer's browser (CSRF).

A page on any site can make the browser send a "simple" request to ``localhost:8000``
without asking anyone first: a POST whose body is ``text/plain``, a form or multipart, or
a POST with no body at all. So every request that may change something (any method but
GET, HEAD and OPTIONS) passes two checks before its handler runs:

1. **Bodies are JSON.** ``Content-Type`` must be ``application/json`` (a ``charset``
   parameter is fine) or ``application/<something>+json``; any other content type, or a
   body without one, is ``415 unsupported_media_type``. A browser asks first (a CORS
   preflight) before it sends a JSON content type cross-site, and the API answers
   preflights only for the origins in ``TETHER_CORS_ORIGINS`` (none by default).
2. **Foreign origins are refused.** Browsers put ``Origin`` on every cross-origin POST
   (also on those without a body, such as ``/cancel``, which need no content type). A
   request carrying an ``Origin`` that is neither the API's own (the ``Host`` it was sent
   to, or ``X-Forwarded-Host`` behind a proxy) nor in the allow-list is ``403
   cross_origin_refused``. Workers, the client and curl send no ``Origin``.

The API sets no cookies and reads none, and CORS never allows credentials, so nothing a
browser holds on its own can authenticate a request.

Cost: a dict of the request's few headers and some lookups per POST (0.6 us measured), a
method lookup per GET (0.13 us): under 0.1% of a submission (docs/http-api.md
"Browsers").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from litestar.types import ASGIApp, Receive, Scope, Send

from tether.errors import CrossOriginRefused, UnsupportedMediaType

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_JSON = b"application/json"
_HINT = "send JSON with Content-Type: application/json (curl: -H 'content-type: application/json')"


def is_json_media_type(content_type: bytes) -> bool:
    """``application/json`` or ``application/*+json``, whatever its parameters."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == _JSON or (media.startswith(b"application/") and media.endswith(b"+json"))


def check_request_headers(headers: Iterable[tuple[bytes, bytes]], origins: frozenset[str]) -> None:
    """Raise ``UnsupportedMediaType`` or ``CrossOriginRefused`` for a state-changing
    request a browser could have been made to send (see the module's docstring)."""
    found = dict(headers)  # ASGI header names are lower case; one C-level pass
    content_type = found.get(b"content-type")
    origin = found.get(b"origin")
    length = found.get(b"content-length")
    has_body = (length is not None and length.strip() != b"0") or (b"transfer-encoding" in found)
    if content_type is not None:
        if content_type != _JSON and not is_json_media_type(content_type):
            shown = content_type.decode("latin-1")[:100]
            raise UnsupportedMediaType(
                f"request bodies must be JSON, not {shown!r}: {_HINT}",
                details={"content_type": shown, "accepted": ["application/json"]},
            )
    elif has_body:
        raise UnsupportedMediaType(
            f"the request has a body but no Content-Type: {_HINT}",
            details={"content_type": None, "accepted": ["application/json"]},
        )
    if origin is not None and "*" not in origins:
        text = origin.decode("latin-1")
        hosts = {
            value.strip().lower()
            for value in (found.get(b"host"), found.get(b"x-forwarded-host"))
            if value
        }
        if text not in origins and origin.split(b"://", 1)[-1].lower() not in hosts:
            raise CrossOriginRefused(
                f"requests from origin {text[:200]!r} are refused: only the API's own origin "
                "and those listed in TETHER_CORS_ORIGINS may change anything",
                details={"origin": text[:200]},
            )


def browser_guard(origins: Iterable[str] = ()) -> Callable[[ASGIApp], ASGIApp]:
    """The Litestar middleware (a factory of ASGI apps) that runs the checks on every
    route; ``origins`` is the CORS allow-list (``TETHER_CORS_ORIGINS``)."""
    allowed = frozenset(origins)

    def middleware(app: ASGIApp) -> ASGIApp:
        async def guard(scope: Scope, receive: Receive, send: Send) -> None:
            # (Websocket scopes have no method: they pass, as GET and HEAD do.)
            if scope.get("method", "GET") not in _SAFE_METHODS:
                check_request_headers(scope["headers"], allowed)
            await app(scope, receive, send)

        return guard

    return middleware
