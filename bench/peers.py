"""Where the peers (arq, saq, DBOS) run: their own virtualenv, made by ``make bench``.

arq pins redis-py below 6, so peers cannot share the venv that tests tether on the
redis-py users get. The tether rows of a bench run in the interpreter that started it;
each peer row runs in ``$TETHER_BENCH_PEER_PYTHON``, else ``.venv-bench/bin/python``,
else this interpreter (if it happens to have the peer installed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def peer_python() -> str:
    configured = os.environ.get("TETHER_BENCH_PEER_PYTHON")
    if configured:
        return configured
    venv = ROOT / ".venv-bench" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def peer_version(distribution: str) -> str | None:
    """The version of ``distribution`` in the peers' interpreter, None if absent."""
    code = (
        "import importlib.metadata as m, sys\n"
        "try: print(m.version(sys.argv[1]))\n"
        "except m.PackageNotFoundError: sys.exit(1)\n"
    )
    done = subprocess.run(
        [peer_python(), "-c", code, distribution], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else None
