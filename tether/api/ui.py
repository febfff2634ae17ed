"""The dashboard: static files shipped in the package (``tether/api/dashboard/``), served
at ``/dashboard/`` by the API itself. Nothing is built at install time and nothing is
fetched from elsewhere at run time, so it works on an air-gapped network.

Only the files listed in ``ASSETS`` are served, read once at start (a few tens of KB):
no path from a request ever reaches the filesystem. The pages hold no data and need no
key; every call they make to the API sends the key the user pasted (``Authorization:
Bearer``), so the dashboard can do exactly what that key may. Responses carry a
Content-Security-Policy allowing only this origin (no inline script or style, no
framing), so an injected string cannot run or load anything.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Controller, Response, get

from tether.errors import NotFound

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboard"

# name -> media type: everything the dashboard is made of.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

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

_CONTENT = {name: (DASHBOARD_DIR / name).read_bytes() for name in ASSETS}


def _asset(name: str) -> Response[bytes]:
    if name not in _CONTENT:
        raise NotFound(f"no dashboard file {name!r}", details={"name": name})
    return Response(_CONTENT[name], media_type=ASSETS[name], headers=SECURITY_HEADERS)


class DashboardController(Controller):
    path = "/dashboard"
    tags = ["dashboard"]
    include_in_schema = False

    @get(["/", "/index.html"], operation_id="dashboard", summary="The dashboard's page")
    async def page(self) -> Response[bytes]:
        return _asset("index.html")

    @get("/{name:str}", operation_id="dashboardAsset", summary="A file of the dashboard")
    async def asset(self, name: str) -> Response[bytes]:
        return _asset(name)
