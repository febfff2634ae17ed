"""The dashboard: static files shipped in the package (``tether/api/dashboard/``), served
at ``/dashboard/`` by the API itself. Nothing is built at install time and nothing is
fetched from elsewhere at run time, so it works on an air-gapped network.

The page itself needs no key (it holds no data); every call it makes to the API sends
the key the user pasted (``Authorization: Bearer``), so it can do exactly what that key
may. Responses carry a Content-Security-Policy allowing only this origin (no inline
script or style, no framing), so an injected string cannot run or load anything.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Response
from litestar.router import Router
from litestar.static_files import create_static_files_router

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboard"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


async def _secure(response: Response) -> Response:  # type: ignore[type-arg]
    response.headers.update(SECURITY_HEADERS)
    return response


def dashboard_router() -> Router:
    return create_static_files_router(
        path="/dashboard",
        directories=[DASHBOARD_DIR],
        html_mode=True,
        name="dashboard",
        after_request=_secure,
        include_in_schema=False,
        tags=["dashboard"],
    )
