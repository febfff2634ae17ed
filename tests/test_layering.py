"""The import layering: workers and clients speak HTTP, so they never import the Redis
engine (``tether.queue``) or the API (``tether.api``); the types they share with those
live in ``tether.protocol``, which imports neither."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import tether

PACKAGE = Path(tether.__file__).parent
HTTP_SIDE = sorted(
    [
        *(PACKAGE / "workers").glob("*.py"),
        PACKAGE / "client.py",
        PACKAGE / "protocol.py",
        PACKAGE / "_client_http.py",
        PACKAGE / "_client_fast.py",
        PACKAGE / "errors.py",
    ]
)
FORBIDDEN = ("tether.queue", "tether.api")


def imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, anywhere in it (functions and TYPE_CHECKING too)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


@pytest.mark.parametrize("path", HTTP_SIDE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_http_side_modules_never_import_the_engine_or_the_api(path: Path) -> None:
    bad = [m for m in imported_modules(path) if m.startswith(FORBIDDEN)]

    assert bad == [], f"{path.name} imports {bad}: shared types belong in tether.protocol"


def test_importing_the_worker_and_the_client_loads_no_engine_module() -> None:
    code = (
        "import sys, tether.workers, tether.client, tether.workers.workflow;"
        "print(sorted(m for m in sys.modules if m.startswith(('tether.queue', 'tether.api'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert out.strip() == "[]"
