"""The function registry: every function some machine has ever registered.

One hash in partition 0, ``{<prefix>:0}:functions``: field = function name, value = the
JSON of its spec (kind, input JSON schema, timeout, max attempts) as last registered.
It answers "can a job of this function ever run?" for ``POST /v1/jobs`` and lists what
``GET /v1/functions`` shows.

Machines repeat their functions in heartbeats; this process writes a spec only when it
changed or every ``refresh`` seconds, and remembers names it has seen, so the hot paths
(heartbeats, enqueues) usually cost no Redis round trip here. A name never leaves the
registry, so a positive answer can be cached for the life of the process.

So that it cannot grow without bound, the registry holds at most ``limit`` names
(``tether.limits.MAX_REGISTERED_FUNCTIONS``, ``TETHER_MAX_REGISTERED_FUNCTIONS``): a
registration that would pass it writes nothing and is refused (``RegistryFull``, 409),
checked and written by one script (``register_functions.lua``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

import orjson

from tether.api.input_check import Validator, validator_for
from tether.errors import RegistryFull
from tether.limits import MAX_REGISTERED_FUNCTIONS
from tether.protocol import (
    ACTIVATION_PREFIX,
    ChildSpec,
    ErrorInfo,
    FunctionSpec,
    parse_activation_function,
)
from tether.queue.keys import Keys
from tether.queue.redis_errors import redis_errors
from tether.queue.redis_py import Client
from tether.queue.scripts import script_source


@dataclass(frozen=True, slots=True)
class RegisteredFunction:
    name: str
    kind: str
    input_schema: dict[str, Any] | None
    timeout: float | None
    max_attempts: int | None
    # The compiled check of input_schema (tether.api.input_check), None: unchecked.
    validate: Validator | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_json(cls, name: str, raw: str | bytes) -> RegisteredFunction:
        data = orjson.loads(raw)
        schema = data.get("input_schema")
        return cls(
            name=name,
            kind=str(data.get("kind", "function")),
            input_schema=schema,
            timeout=data.get("timeout"),
            max_attempts=data.get("max_attempts"),
            validate=validator_for(schema if isinstance(schema, dict) else None),
        )


class FunctionRegistry:
    def __init__(
        self,
        redis: Client,
        keys: Keys,
        *,
        refresh: float = 60.0,
        limit: int = MAX_REGISTERED_FUNCTIONS,
    ) -> None:
        self._redis = redis
        self._key = keys.partition(0).functions
        self._refresh = refresh
        self._limit = limit
        self._register = redis.register_script(script_source("register_functions"))
        self._known: dict[str, RegisteredFunction] = {}
        self._fetched: dict[str, float] = {}  # name -> when its spec was last read
        self._written: dict[str, tuple[bytes, float]] = {}  # name -> (json, when)

    async def register(self, specs: Sequence[FunctionSpec]) -> None:
        """Record the functions a machine serves (a no-op when nothing changed)."""
        now = time.monotonic()
        changed: dict[str, bytes] = {}
        for spec in specs:
            blob = orjson.dumps(
                {
                    "kind": spec.kind,
                    "input_schema": spec.input_schema,
                    "timeout": spec.timeout,
                    "max_attempts": spec.max_attempts,
                }
            )
            last = self._written.get(spec.name)
            if last is None or last[0] != blob or now - last[1] > self._refresh:
                changed[spec.name] = blob
        if not changed:
            return
        # One script checks the limit and writes, so racing heartbeats cannot pass it.
        args: list[Any] = [self._limit]
        for name, blob in changed.items():
            args += (name, blob)
        with redis_errors():
            reply = await self._register(keys=[self._key], args=args)
        if not reply[0]:
            size, fresh = int(reply[1]), int(reply[2])
            raise RegistryFull(
                f"registering {fresh} new function(s) would take the registry past its "
                f"limit of {self._limit} (it holds {size}); nothing was registered",
                details={"limit": self._limit, "registered": size, "new": fresh},
            )
        for name, blob in changed.items():
            self._written[name] = (blob, now)
            self._known[name] = RegisteredFunction.from_json(name, blob)
            self._fetched[name] = now

    async def get(self, name: str) -> RegisteredFunction | None:
        """The spec of ``name``, or None if no machine ever registered it."""
        now = time.monotonic()
        known = self._known.get(name)
        if known is not None and now - self._fetched[name] < self._refresh:
            return known
        with redis_errors():
            raw = await self._redis.hget(self._key, name)
        if raw is None:
            return known  # never forgotten once seen
        found = RegisteredFunction.from_json(name, raw)
        self._known[name] = found
        self._fetched[name] = now
        return found

    async def get_many(self, names: Sequence[str]) -> dict[str, RegisteredFunction | None]:
        """Specs of several names, with one round trip for those not cached."""
        now = time.monotonic()
        out: dict[str, RegisteredFunction | None] = {}
        missing: list[str] = []
        for name in dict.fromkeys(names):
            known = self._known.get(name)
            if known is not None and now - self._fetched[name] < self._refresh:
                out[name] = known
            else:
                missing.append(name)
        if missing:
            with redis_errors():
                raws = await self._redis.hmget(self._key, missing)
            for name, raw in zip(missing, raws, strict=True):
                if raw is None:
                    out[name] = self._known.get(name)
                    continue
                found = RegisteredFunction.from_json(name, raw)
                self._known[name] = found
                self._fetched[name] = now
                out[name] = found
        return out

    async def all(self) -> list[RegisteredFunction]:
        with redis_errors():
            rows = cast(dict[str, str], await self._redis.hgetall(self._key))
        return sorted(
            (RegisteredFunction.from_json(name, raw) for name, raw in rows.items()),
            key=lambda f: f.name,
        )


async def workflow_versions(
    registry: FunctionRegistry, served: Mapping[str, set[int]]
) -> dict[str, tuple[set[int], set[int]]]:
    """Workflow -> (versions live machines serve now, versions ever registered)."""
    found: dict[str, tuple[set[int], set[int]]] = {}
    for spec in await registry.all():
        parsed = parse_activation_function(spec.name)
        if parsed is not None:
            found.setdefault(parsed[0], (set(served.get(parsed[0], ())), set()))[1].add(parsed[1])
    return found


def child_terms(
    children: Sequence[ChildSpec],
    specs: Mapping[str, RegisteredFunction | None],
    workflows: Mapping[str, tuple[set[int], set[int]]] | None = None,
) -> tuple[list[ChildSpec], dict[int, ErrorInfo]]:
    """The children a workflow asked for (all of them, in order), on the terms a job of
    their function gets, and those refused by position: a
    child without its own limits takes those its function registered (``max_attempts``,
    ``timeout``), like ``POST /v1/jobs``. A child that cannot run is refused: its step
    fails at once, not retried, naming why, instead of the run waiting forever on a job
    no machine will ever take."""
    out: list[ChildSpec] = []
    refused: dict[int, ErrorInfo] = {}
    for child in children:
        if child.workflow:
            served, registered = (workflows or {}).get(child.function, (set(), set()))
            version = child.version or max(served or registered or {0})
            if version not in registered:
                what = f" version {child.version}" if child.version else ""
                refused[child.position] = ErrorInfo(
                    type="UnknownFunction",
                    message=f"ctx.child({child.function!r}): no machine has registered "
                    f"workflow {child.function!r}{what}; start a worker that serves it, "
                    "then retry the run",
                )
            out.append(replace(child, version=version))
            continue
        if child.function.startswith(ACTIVATION_PREFIX):
            refused[child.position] = ErrorInfo(
                type="UnsupportedChild",
                message=f"ctx.call({child.function!r}): {child.function!r} is a workflow's "
                "activation queue; start a child run with ctx.child(workflow, input)",
            )
            out.append(child)
            continue
        spec = specs.get(child.function)
        if spec is None:
            refused[child.position] = ErrorInfo(
                type="UnknownFunction",
                message=f"ctx.call({child.function!r}): no machine has registered function "
                f"{child.function!r}; start a worker that serves it, then retry the run",
            )
            out.append(child)
            continue
        timeout_ms = child.timeout_ms
        if timeout_ms is None and spec.timeout is not None:
            timeout_ms = round(spec.timeout * 1000)
        out.append(
            replace(
                child,
                max_attempts=child.max_attempts or spec.max_attempts,
                timeout_ms=timeout_ms,
            )
        )
    return out, refused
