"""The dashboard's files, served by the API from the installed package."""

from __future__ import annotations

import re

import httpx

from tether.api.ui import DASHBOARD_DIR


async def test_the_dashboard_page_is_served_at_its_path(client: httpx.AsyncClient) -> None:
    response = await client.get("/dashboard/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/dashboard/app.js" in response.text


async def test_the_dashboard_assets_are_served_with_their_types(
    client: httpx.AsyncClient,
) -> None:
    types = {"app.js": "javascript", "style.css": "text/css", "favicon.svg": "image/svg+xml"}
    for name, kind in types.items():
        response = await client.get(f"/dashboard/{name}")
        assert response.status_code == 200, name
        assert kind in response.headers["content-type"]


async def test_dashboard_responses_forbid_inline_code_framing_and_other_origins(
    client: httpx.AsyncClient,
) -> None:
    headers = (await client.get("/dashboard/")).headers
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


async def test_paths_outside_the_dashboard_directory_are_not_served(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/dashboard/../pyproject.toml", "/dashboard/%2e%2e/app.py", "/dashboard/nope"):
        response = await client.get(path)
        assert response.status_code == 404, path


def test_the_dashboard_fetches_nothing_from_other_origins() -> None:
    """It must work on an air-gapped network: no URL with a host in any of its files."""
    for path in DASHBOARD_DIR.iterdir():
        text = path.read_text()
        hosts = re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text)
        # (an SVG names its XML namespace with a URL; nothing loads it)
        assert [h for h in hosts if h != "http://www.w3.org"] == [], path.name


def test_the_dashboard_builds_no_markup_from_strings() -> None:
    """Data reaches the page as text nodes only (no innerHTML): nothing a run's input
    says can become markup or script."""
    script = (DASHBOARD_DIR / "app.js").read_text()
    assert "innerHTML" not in script and "outerHTML" not in script
    assert "insertAdjacentHTML" not in script and "document.write" not in script


def test_the_dashboard_keeps_the_key_in_session_storage_only() -> None:
    script = (DASHBOARD_DIR / "app.js").read_text()
    assert "localStorage" not in script and "document.cookie" not in script
    assert "sessionStorage" in script and '"Bearer "' in script
