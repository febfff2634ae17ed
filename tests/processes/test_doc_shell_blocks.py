"""Every shell block of README.md and docs/ runs, in order, against a plane this test
starts (Redis, the API, an orchestrator, the example worker and a worker serving the
docs' own examples), and succeeds: the docs stay true to the code.

A block is a fenced ``sh``/``bash``/``shell`` block, or a ``console`` block's ``$ ``
lines. A block preceded by ``<!-- not-run: reason -->`` is skipped (kept few: starting
the long-running dev plane or a server, ids only a real poll gives). Before a block runs:

- ``localhost:8000`` and ``127.0.0.1:8000`` become the plane's API, ``-p 6399`` (the dev
  Redis) its Redis; ``$TETHER_URL`` and ``$TETHER_REDIS_URL`` are set;
- ``JOB_ID`` becomes the id of the last job an earlier ``curl`` answered with (a fresh
  ``hello`` job at the start of each document), ``MACHINE_ID`` the example worker's id;
- the block runs in a folder holding ``.tether/admin.key`` (the plane's admin key), as
  the folder `tether dev` ran in would, and ``$TETHER_API_KEY`` is that key;
- ``curl`` fails on an HTTP error (``--fail-with-body``), and the block on any failure
  (``set -euo pipefail``); ``tether`` is this interpreter's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from proc_stack import ROOT, Stack

from tether.queue.keys import Keys
from tether.redis_server import RedisServer, free_port

MISSING = [tool for tool in ("bash", "curl", "redis-cli") if shutil.which(tool) is None]
pytestmark = [
    pytest.mark.single_node(reason="the docs' commands start a Redis server of their own"),
    pytest.mark.processes,
    pytest.mark.skipif(bool(MISSING), reason=f"the docs' commands need {MISSING} on PATH"),
]

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = {"sh", "bash", "shell", "console"}
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.+?)\s*-->")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)
MACHINE_ID = "doc-hello"
MAX_SKIPPED = 4  # skips are for what cannot run here; keep them this few

PRELUDE = r"""
set -euo pipefail
curl() {
  local out code=0
  out=$(command curl --fail-with-body --show-error --max-time 60 "$@") || code=$?
  printf '%s\n' "$out"
  if [ "$code" -ne 0 ]; then return "$code"; fi
  local id
  id=$(printf '%s' "$out" | grep -o '"id": *"[0-9a-f]\{32\}"' | head -n 1 \
       | grep -o '[0-9a-f]\{32\}' || true)
  if [ -n "$id" ]; then printf '%s' "$id" > "$DOC_JOB_ID_FILE"; fi
}
"""


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    lang: str
    text: str
    skip: str | None  # the not-run reason

    def commands(self) -> str:
        if self.lang != "console":
            return self.text
        return "\n".join(line[2:] for line in self.text.splitlines() if line.startswith("$ "))


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text()
    found = []
    for match in FENCE.finditer(text):
        lang = match.group(1)
        if lang not in SHELLS:
            continue
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        reason = NOT_RUN.fullmatch(before.strip())
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(doc, line, lang, match.group(2), reason and reason.group(1)))
    return found


@dataclass
class Plane:
    stack: Stack
    redis: RedisServer
    state: Path

    def env(self) -> dict[str, str]:
        env = self.stack.env | {
            "TETHER_URL": self.stack.url,
            "DOC_JOB_ID_FILE": str(self.state),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        env.pop("TETHER_JOB_TIMELINES", None)
        return env

    def substitute(self, commands: str) -> str:
        api = f"127.0.0.1:{self.stack.api_port}"
        commands = commands.replace("localhost:8000", api).replace("127.0.0.1:8000", api)
        commands = commands.replace("-p 6399", f"-p {self.redis.port}")
        commands = commands.replace("MACHINE_ID", MACHINE_ID)
        return commands.replace("JOB_ID", self.state.read_text().strip())

    def fresh_job(self) -> None:
        job = self.stack.submit("hello", {"name": "docs"})
        self.state.write_text(job["id"])


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    tmp = tmp_path_factory.mktemp("doc-plane")
    redis = RedisServer(tmp / "redis", port=free_port()).start()
    stack = Stack(redis.url, Keys(), tmp)  # the default prefix, as the docs' keys say
    try:
        stack.api()
        stack.orchestrator()
        stack.worker(MACHINE_ID, "examples.hello:WorkerSettings")
        stack.worker("doc-examples", "doc_examples:WorkerSettings")
        yield Plane(stack, redis, tmp / "job-id")
    finally:
        stack.close(show_logs=False)
        redis.stop()


def test_the_docs_have_shell_blocks_and_skip_few() -> None:
    every = [b for doc in DOCS for b in blocks(doc)]
    skipped = [f"{b.doc.name}:{b.line} ({b.skip})" for b in every if b.skip]
    assert len(every) > 20
    assert len(skipped) <= MAX_SKIPPED, skipped


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_shell_block_of_the_doc_runs(plane: Plane, doc: Path, tmp_path: Path) -> None:
    plane.fresh_job()
    assert plane.stack.test_keys is not None
    (tmp_path / ".tether").mkdir()
    (tmp_path / ".tether" / "admin.key").write_text(plane.stack.test_keys.admin + "\n")
    for block in blocks(doc):
        if block.skip:
            continue
        script = PRELUDE + plane.substitute(block.commands())
        done = subprocess.run(
            ["bash", "-c", script],
            env=plane.env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (
            f"{doc.name}:{block.line} failed ({done.returncode}):\n{block.text}\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
    assert httpx.get(f"{plane.stack.url}/healthz", timeout=5).status_code == 200
