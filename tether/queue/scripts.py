"""Loads the Lua scripts in ``lua/``: one file per transition.

A line ``--@include name`` pulls in ``lua/includes/name.lua`` (once per script, with its
own includes first), so shared helpers are written once. Scripts are registered with
redis-py, which calls them by SHA and reloads them on NOSCRIPT (after a Redis restart or
SCRIPT FLUSH), also inside pipelines.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from redis.commands.core import AsyncScript

from tether.queue.redis_py import Client

LUA_DIR = Path(__file__).parent / "lua"
_INCLUDE = re.compile(r"^--@include\s+(\w+)\s*$", re.MULTILINE)

SCRIPT_NAMES: tuple[str, ...] = tuple(sorted(p.stem for p in LUA_DIR.glob("*.lua")))


def _expand(source: str, done: set[str], out: list[str]) -> None:
    for name in _INCLUDE.findall(source):
        if name in done:
            continue
        done.add(name)
        path = LUA_DIR / "includes" / f"{name}.lua"
        if not path.exists():
            raise FileNotFoundError(f"Lua include {name!r} not found at {path}")
        included = path.read_text()
        _expand(included, done, out)
        out.append(_INCLUDE.sub("", included).strip())


@cache
def script_source(name: str) -> str:
    """The full text of a script, its includes inlined ahead of its body."""
    path = LUA_DIR / f"{name}.lua"
    if not path.exists():
        raise FileNotFoundError(f"no Lua script named {name!r} in {LUA_DIR}")
    source = path.read_text()
    parts: list[str] = []
    _expand(source, set(), parts)
    parts.append(_INCLUDE.sub("", source).strip())
    return "\n\n".join(parts) + "\n"


def register_scripts(redis: Client) -> dict[str, AsyncScript]:
    """Every transition, registered with ``redis`` (called by SHA) and named by file."""
    return {name: redis.register_script(script_source(name)) for name in SCRIPT_NAMES}


async def load_scripts(redis: Client) -> None:
    """SCRIPT LOAD every script (on a cluster, redis-py sends it to every primary).

    Batches that depend on their order (an enqueue and the claim that hands its job to a
    parked poll, in one round trip) would run out of order if one of their scripts were
    missing: the calls refused with NOSCRIPT are sent again after the others ran. So the
    API loads them all when it starts, and all of them again on any NOSCRIPT (a restart
    or SCRIPT FLUSH drops every script at once).
    """
    for name in SCRIPT_NAMES:  # one at a time: rare (start, NOSCRIPT), and cluster-safe
        await redis.script_load(script_source(name))
