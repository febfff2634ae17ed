"""Schedules: cron and fixed-interval ticks that start jobs or workflow runs.

A schedule is a hash ``{t:p}:sched:<name>`` plus its entry in ``{t:p}:schedules`` (name
-> next tick, ms; ``+inf`` while paused, so the zset lists every schedule). The orchestrator's pass
(``ScheduleEngine.fire_due``) reads the due ones, works out in Python (croniter, zoneinfo)
which tick to fire and which comes next, and ``fire_schedule.lua`` starts the job or run
``sched:<name>:<tick ms>`` and moves the next tick on in one atomic step, but only if the
schedule is still as read: of any number of orchestrators, one fires each tick, and a
restart fires nothing twice (the tick is the id of what it starts, and the id is the
idempotency key). Everything a schedule starts lives in the schedules' partition.

Schedule states (``SCHEDULE_TRANSITIONS``)::

    (none) -> active | paused      put_schedule
    active -> active               fire_schedule, put_schedule, trigger_schedule
    active -> paused               pause_schedule
    paused -> active               resume_schedule
    paused -> paused               put_schedule, trigger_schedule
    active | paused -> (none)      delete_schedule

Ticks missed while no orchestrator ran follow the schedule's ``misfire`` policy:

- ``skip`` (default): of the ticks due at a pass, the latest fires if it is at most
  ``grace`` late, none otherwise; the others are counted (``missed``), even those within
  ``grace``, and the schedule goes on from the next tick after now;
- ``catch_up_once``: the latest missed tick fires once, however late (the others are
  counted as missed), then the schedule goes on from the next tick after now.

A pass less than one interval after a tick fires it and misses none; only a pass that
finds two or more ticks due (no orchestrator passed for a whole interval) misses any.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from croniter import CroniterError, croniter

from tether.errors import Conflict, NotFound, ValidationFailed
from tether.queue.config import QueueConfig
from tether.queue.engine import MISSING, WRONG_STATE, check_id, check_name
from tether.queue.payload import dump_payload
from tether.queue.redis_errors import redis_errors
from tether.queue.redis_py import Client
from tether.queue.scripts import register_scripts

log = logging.getLogger("tether.orchestrator")

Misfire = Literal["skip", "catch_up_once"]
MISFIRE_POLICIES: tuple[str, ...] = ("skip", "catch_up_once")
DEFAULT_GRACE_MS = 60_000
MIN_EVERY_MS = 1000
# A name ends up in ids `sched:<name>@<key>` (key up to 30), which stay within 200 chars.
MAX_NAME = 150
# Missed ticks of a cron schedule are counted by walking them: at most this many a pass.
MAX_COUNTED = 10_000


class ScheduleState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


# (from, to) -> the scripts that make that move (None: no schedule).
SCHEDULE_TRANSITIONS: dict[tuple[ScheduleState | None, ScheduleState | None], frozenset[str]] = {
    (None, ScheduleState.ACTIVE): frozenset({"put_schedule"}),
    (None, ScheduleState.PAUSED): frozenset({"put_schedule"}),
    (ScheduleState.ACTIVE, ScheduleState.ACTIVE): frozenset(
        {"fire_schedule", "put_schedule", "trigger_schedule"}
    ),
    (ScheduleState.ACTIVE, ScheduleState.PAUSED): frozenset({"pause_schedule"}),
    (ScheduleState.PAUSED, ScheduleState.ACTIVE): frozenset({"resume_schedule"}),
    (ScheduleState.PAUSED, ScheduleState.PAUSED): frozenset({"put_schedule", "trigger_schedule"}),
    (ScheduleState.ACTIVE, None): frozenset({"delete_schedule"}),
    (ScheduleState.PAUSED, None): frozenset({"delete_schedule"}),
}


@dataclass(frozen=True, slots=True)
class ScheduleDef:
    """What a schedule starts and when. Exactly one of ``cron`` and ``every_ms``."""

    name: str
    kind: Literal["job", "run"]  # a job of a function, or a run of a workflow
    target: str  # the function or the workflow
    input: Any = None
    cron: str | None = None  # 5 fields, or 6 with seconds last (croniter)
    every_ms: int | None = None  # ticks at multiples of this since the Unix epoch
    timezone: str = "UTC"  # the zone cron fields are read in (zoneinfo name)
    misfire: Misfire = "skip"
    grace_ms: int = DEFAULT_GRACE_MS
    max_attempts: int | None = None  # None: the engine's default
    timeout_ms: int | None = None

    def validate(self) -> ScheduleDef:
        check_id(self.name, "name")
        if len(self.name) > MAX_NAME or "@" in self.name:
            # No '@': a trigger's id is `sched:<name>@<key>`, a tick's `sched:<name>:<ms>`,
            # so no trigger of one schedule can take the id of another's tick.
            raise ValidationFailed(
                f"a schedule name is 1-{MAX_NAME} letters, digits and _ . : -",
                details={"field": "name"},
            )
        if self.kind not in ("job", "run"):
            raise ValidationFailed("kind must be 'job' or 'run'", details={"field": "kind"})
        check_name(self.target, "function" if self.kind == "job" else "workflow")
        if (self.cron is None) == (self.every_ms is None):
            raise ValidationFailed(
                "a schedule has exactly one of cron and every", details={"field": "cron"}
            )
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ValidationFailed(
                f"not a cron expression: {self.cron!r}",
                details={"field": "cron", "value": self.cron[:200]},
            )
        if self.cron is not None:
            zone(self.timezone)
            try:  # a valid expression may still never match (`0 0 30 2 *`: February 30)
                self.next_tick(0)
            except (CroniterError, ValueError) as exc:
                raise ValidationFailed(
                    f"cron {self.cron!r} never fires: {exc}",
                    details={"field": "cron", "value": self.cron[:200]},
                ) from exc
        if self.every_ms is not None and self.every_ms < MIN_EVERY_MS:
            raise ValidationFailed(
                f"every must be at least {MIN_EVERY_MS / 1000:g} s", details={"field": "every"}
            )
        zone(self.timezone)
        if self.misfire not in MISFIRE_POLICIES:
            raise ValidationFailed(
                f"misfire must be one of {', '.join(MISFIRE_POLICIES)}",
                details={"field": "misfire"},
            )
        if self.grace_ms < 0:
            raise ValidationFailed("grace must not be negative", details={"field": "grace"})
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValidationFailed(
                "max_attempts must be at least 1", details={"field": "max_attempts"}
            )
        if self.timeout_ms is not None and self.timeout_ms < 0:
            raise ValidationFailed("timeout must not be negative", details={"field": "timeout"})
        return self

    # -- ticks ----------------------------------------------------------------------

    def next_tick(self, after_ms: int) -> int:
        """The first tick strictly after ``after_ms``."""
        if self.every_ms is not None:
            return (after_ms // self.every_ms + 1) * self.every_ms
        # croniter walks wall-clock time (naive, in the schedule's zone) and we place each
        # wall-clock tick in the zone ourselves: croniter's own handling of aware times
        # differs between versions across DST changes. A tick in the hour a DST change
        # skips fires at the same offset after it; one in a repeated hour fires once.
        tz = zone(self.timezone)
        walk = croniter(cast(str, self.cron), _wall_clock(after_ms, tz))
        for _ in range(_MAX_WALK):
            wall = cast(datetime, walk.get_next(datetime))
            for fold in (0, 1):
                tick = _instant(wall, tz, fold)
                if tick > after_ms:
                    return tick
        raise ValidationFailed(f"cron {self.cron!r} has no next tick", details={"field": "cron"})

    def prev_tick(self, tick_ms: int) -> int:
        """The tick before the tick ``tick_ms``."""
        if self.every_ms is not None:
            return tick_ms - self.every_ms
        tz = zone(self.timezone)
        walk = croniter(cast(str, self.cron), _wall_clock(tick_ms, tz))
        for _ in range(_MAX_WALK):
            wall = cast(datetime, walk.get_prev(datetime))
            for fold in (1, 0):
                tick = _instant(wall, tz, fold)
                if tick < tick_ms:
                    return tick
        raise ValidationFailed(f"cron {self.cron!r} has no tick before", details={"field": "cron"})

    def count_ticks(self, first_ms: int, last_ms: int) -> int:
        """Ticks from ``first_ms`` to ``last_ms``, both ticks, inclusive (cron: capped)."""
        if last_ms < first_ms:
            return 0
        if self.every_ms is not None:
            return (last_ms - first_ms) // self.every_ms + 1
        n, t = 1, first_ms
        while n < MAX_COUNTED:
            t = self.next_tick(t)
            if t > last_ms:
                break
            n += 1
        return n

    def plan(self, next_fire: int, now: int) -> Plan:
        """What a pass at ``now`` does with a schedule whose next tick ``next_fire`` is
        due: the tick to fire (if any), the next tick, and how many ticks it passes over."""
        upcoming = self.next_tick(now)
        latest = max(self.prev_tick(upcoming), next_fire)  # the last tick at or before now
        due = self.count_ticks(next_fire, latest)
        if self.misfire == "skip" and now - latest > self.grace_ms:
            return Plan(None, upcoming, due)
        return Plan(latest, upcoming, due - 1)

    def digest(self) -> str:
        """A hash of the definition: putting the same one again changes nothing."""
        return hashlib.sha256(orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class Plan:
    tick: int | None
    next_fire: int
    missed: int


_MAX_WALK = 100


def _wall_clock(ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz).replace(tzinfo=None)


def _instant(wall: datetime, tz: ZoneInfo, fold: int) -> int:
    return round(wall.replace(tzinfo=tz, fold=fold).timestamp() * 1000)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(
            f"unknown time zone {name!r}", details={"field": "timezone", "value": name[:100]}
        ) from exc


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """A schedule as stored."""

    definition: ScheduleDef
    paused: bool
    next_fire: int | None  # ms; None while paused
    rev: int
    fired: int  # jobs or runs its ticks started
    missed: int  # ticks passed over (outages, the misfire policy)
    last_tick: int | None
    last_id: str | None
    last_fired_at: int | None
    created_at: int | None
    updated_at: int | None
    source: str

    @property
    def name(self) -> str:
        return self.definition.name

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> ScheduleRecord:
        def num(field: str) -> int | None:
            value = data.get(field)
            return int(value) if value not in (None, "") else None

        definition = ScheduleDef(
            name=data["name"],
            kind=cast(Literal["job", "run"], data["kind"]),
            target=data["target"],
            input=orjson.loads(data["input"]) if data.get("input") else None,
            cron=data.get("cron") or None,
            every_ms=num("every_ms"),
            timezone=data.get("timezone") or "UTC",
            misfire=cast(Misfire, data.get("misfire") or "skip"),
            grace_ms=num("grace_ms") or 0,
            max_attempts=num("max_attempts"),
            timeout_ms=num("timeout_ms"),
        )
        paused = data.get("paused") == "1"
        return cls(
            definition=definition,
            paused=paused,
            next_fire=None if paused else num("next_fire"),
            rev=num("rev") or 0,
            fired=num("fired") or 0,
            missed=num("missed") or 0,
            last_tick=num("last_tick"),
            last_id=data.get("last_id") or None,
            last_fired_at=num("last_fired_at"),
            created_at=num("created_at"),
            updated_at=num("updated_at"),
            source=data.get("source") or "api",
        )


@dataclass(frozen=True, slots=True)
class Fired:
    """What a tick or a trigger started: ``id`` ('' if the tick was passed over)."""

    name: str
    id: str
    created: bool


# Workflow -> the versions live machines serve (tether.queue.runs.served_versions).
VersionsSource = Callable[[], Awaitable[dict[str, set[int]]]]


class ScheduleEngine:
    """One typed method per schedule transition (``lua/*_schedule.lua``)."""

    def __init__(self, redis: Client, config: QueueConfig | None = None) -> None:
        self.redis = redis
        self.config = config or QueueConfig()
        self.keys = self.config.keys
        self.pk = self.keys.schedules_partition()
        self._scripts = register_scripts(redis)
        # Attempts of a scheduled run's activation jobs, as RunEngine gives its runs.
        self.activation_max_attempts = 10

    async def now_ms(self) -> int:
        with redis_errors():
            seconds, micros = await self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def put(
        self, definition: ScheduleDef, *, paused: bool = False, source: str = "api"
    ) -> tuple[ScheduleRecord, bool]:
        """Create or redefine a schedule; returns it and whether it was created. The same
        definition again changes nothing (it keeps its next tick)."""
        d = definition.validate()
        cfg = self.config
        if d.max_attempts is None or d.timeout_ms is None:
            d = ScheduleDef(
                **{
                    **asdict(d),
                    "max_attempts": d.max_attempts or cfg.default_max_attempts,
                    "timeout_ms": cfg.default_timeout_ms if d.timeout_ms is None else d.timeout_ms,
                }
            )
        fields: list[Any] = [
            "kind", d.kind, "target", d.target,
            "input", dump_payload(d.input, "input", cfg.max_payload_bytes),
            "cron", d.cron or "", "every_ms", d.every_ms or "", "timezone", d.timezone,
            "misfire", d.misfire, "grace_ms", d.grace_ms,
            "max_attempts", d.max_attempts, "timeout_ms", d.timeout_ms,
        ]  # fmt: skip
        next_fire = d.next_tick(await self.now_ms())
        with redis_errors():
            _, created, _ = await self._scripts["put_schedule"](
                [self.pk.schedule(d.name), self.pk.schedules],
                [d.name, d.digest(), next_fire, 1 if paused else 0, source, *fields],
            )
        return await self.get(d.name), int(created) == 1

    async def get(self, name: str) -> ScheduleRecord:
        check_id(name, "name")
        with redis_errors():
            data = cast(dict[str, str], await self.redis.hgetall(self.pk.schedule(name)))
        if not data:
            raise NotFound(f"no schedule {name}", details={"name": name})
        return ScheduleRecord.from_hash(data)

    async def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by name (schedules are few: read in one round trip)."""
        with redis_errors():
            names = cast(list[str], await self.redis.zrange(self.pk.schedules, 0, -1))
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(self.pk.schedule(name))
                rows = await pipe.execute()
        found = [ScheduleRecord.from_hash(r) for r in rows if r and "name" in r]
        return sorted(found, key=lambda r: r.name)

    async def pause(self, name: str) -> ScheduleRecord:
        check_id(name, "name")
        with redis_errors():
            reply = await self._scripts["pause_schedule"](
                [self.pk.schedule(name), self.pk.schedules], [name]
            )
        self._check(reply, name)
        return await self.get(name)

    async def resume(self, name: str) -> ScheduleRecord:
        """Fire again from the first tick after now (the pause's ticks are not fired)."""
        for _ in range(10):
            record = await self.get(name)
            if not record.paused:
                return record
            next_fire = record.definition.next_tick(await self.now_ms())
            with redis_errors():
                reply = await self._scripts["resume_schedule"](
                    [self.pk.schedule(name), self.pk.schedules], [name, record.rev, next_fire]
                )
            if int(reply[0]) != WRONG_STATE:
                self._check(reply, name)
                return await self.get(name)
        raise Conflict(f"schedule {name} keeps changing; try again", details={"name": name})

    async def delete(self, name: str) -> None:
        check_id(name, "name")
        with redis_errors():
            reply = await self._scripts["delete_schedule"](
                [self.pk.schedule(name), self.pk.schedules], [name]
            )
        self._check(reply, name)

    async def trigger(
        self, name: str, *, key: str | None = None, versions: VersionsSource | None = None
    ) -> Fired:
        """Start the schedule's job or run now, off its cycle; ``key`` makes it
        idempotent (the same key starts one job or run)."""
        record = await self.get(name)
        if key is not None:
            check_id(f"sched:{name}@{key}", "key")
        version = await self._version(record.definition, versions)
        cfg = self.config
        with redis_errors():
            reply = await self._scripts["trigger_schedule"](
                [self.pk.schedule(name)],
                [
                    self.pk.prefix, name, key or "", version, cfg.retention_ms,
                    cfg.job_timeline_maxlen, cfg.timeline_maxlen, self.activation_max_attempts,
                ],
            )  # fmt: skip
        self._check(reply, name)
        return Fired(name, str(reply[1]), int(reply[2]) == 1)

    async def fire_due(
        self, limit: int = 1000, versions: VersionsSource | None = None
    ) -> list[Fired]:
        """Fire every due tick (the orchestrator's pass). Safe to run in any number of
        processes at once: each tick fires in exactly one of them."""
        now = await self.now_ms()
        with redis_errors():
            names = cast(
                list[str],
                await self.redis.zrange(
                    self.pk.schedules, "-inf", now, byscore=True, offset=0, num=limit
                ),
            )
        fired: list[Fired] = []
        served: dict[str, set[int]] | None = None
        cfg = self.config
        for name in names:
            try:
                record = await self.get(name)
            except NotFound:
                continue  # deleted since
            d = record.definition
            if record.paused or record.next_fire is None or record.next_fire > now:
                continue
            try:
                plan = d.plan(record.next_fire, now)
            except (CroniterError, ValidationFailed, ValueError) as exc:
                # One schedule whose ticks cannot be worked out (a zone gone from the
                # system's database, say) must not stop the others: it waits, logged.
                log.error("schedule %s: cannot work out its next tick: %s", name, exc)
                continue
            version: int | str = ""
            if d.kind == "run" and plan.tick is not None:
                if served is None:
                    served = await versions() if versions is not None else {}
                known = served.get(d.target)
                version = max(known) if known else ""
            with redis_errors():
                reply = await self._scripts["fire_schedule"](
                    [self.pk.schedule(name), self.pk.schedules],
                    [
                        self.pk.prefix, name, record.rev, record.next_fire,
                        "" if plan.tick is None else plan.tick, plan.next_fire, version,
                        cfg.retention_ms, cfg.job_timeline_maxlen, cfg.timeline_maxlen,
                        self.activation_max_attempts, plan.missed,
                    ],
                )  # fmt: skip
            if int(reply[0]) == 1:
                fired.append(Fired(name, str(reply[1]), int(reply[2]) == 1))
        return fired

    async def _version(self, d: ScheduleDef, versions: VersionsSource | None) -> int | str:
        if d.kind != "run" or versions is None:
            return ""
        known = (await versions()).get(d.target)
        return max(known) if known else ""

    @staticmethod
    def _check(reply: list[Any], name: str) -> None:
        if int(reply[0]) == MISSING:
            raise NotFound(f"no schedule {name}", details={"name": name})
