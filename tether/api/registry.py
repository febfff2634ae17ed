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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from redis.asyncio import Redis

from tether.api.input_check import Validator, validator_for
from tether.errors import RegistryFull
from tether.limits import MAX_REGISTERED_FUNCTIONS
from tether.protocol import FunctionSpec
from tether.queue.keys import Keys
from tether.queue.redis_errors import redis_errors
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
        redis: Redis,
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
