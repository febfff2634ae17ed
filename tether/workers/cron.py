"""``WorkerSettings.cron_jobs``: arq's ``cron(...)`` jobs, run as tether schedules.

    from tether import cron

    class WorkerSettings:
        functions = [...]
        cron_jobs = [cron(tidy, hour={3, 15}, minute=0), cron(ping, second={0, 30})]
        timezone = "Europe/Paris"    # the zone the fields are read in (default UTC)

``cron(coroutine, month=, day=, weekday=, hour=, minute=, second=0, ...)`` has arq's
signature and meaning: each field is ``None`` (every value), an int, or a set of ints;
``weekday`` is 0-6 from Monday (or 'mon', 'tues', 'wed', 'thurs', 'fri', 'sat', 'sun').
arq's own ``arq.cron(...)`` objects are accepted too (read by their attributes). Each
cron job becomes:

- a function the worker serves, named like arq names it (``cron:<qualname>`` unless
  ``name=`` says otherwise), with the job's own ``timeout`` and ``max_tries``;
- a schedule of the same name (``POST /v1/schedules``, ``source: worker``), put by every
  worker at start (the same definition again changes nothing), whose ticks the
  orchestrator fires exactly once however many workers and orchestrators run.

``run_at_startup`` triggers the schedule once when the worker starts. ``microsecond``,
``unique``, ``job_id``, ``keep_result`` and ``keep_result_forever`` are accepted and
ignored: ticks are whole seconds, a tick is unique by construction (its id is
``sched:<name>:<tick ms>``), and results are kept for the deployment's retention.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from tether.errors import ConfigurationError

if TYPE_CHECKING:
    from tether.workers.transport import MachineTransport

log = logging.getLogger("tether.worker")

Field = int | set[int] | None
_WEEKDAYS = {"mon": 0, "tues": 1, "wed": 2, "thurs": 3, "fri": 4, "sat": 5, "sun": 6}
# arq's field order; cron's is minute hour day month weekday (croniter: second last).
_RANGES = {
    "month": (1, 12),
    "day": (1, 31),
    "weekday": (0, 6),
    "hour": (0, 23),
    "minute": (0, 59),
    "second": (0, 59),
}


@dataclass(frozen=True, slots=True)
class CronJob:
    """A cron job as arq's ``CronJob`` describes one (same attribute names)."""

    name: str
    coroutine: Callable[..., Any]
    month: Field = None
    day: Field = None
    weekday: Any = None
    hour: Field = None
    minute: Field = None
    second: Field = 0
    microsecond: int = 123_456
    run_at_startup: bool = False
    unique: bool = True
    job_id: str | None = None
    timeout: float | None = None
    keep_result: float | None = 0
    keep_result_forever: bool = False
    max_tries: int = 1

    @property
    def expression(self) -> str:
        """The cron expression of the fields: ``minute hour day month weekday second``."""
        return " ".join(
            [
                _field("minute", self.minute),
                _field("hour", self.hour),
                _field("day", self.day),
                _field("month", self.month),
                _weekday_field(self.weekday),
                _field("second", self.second),
            ]
        )


def cron(
    coroutine: Callable[..., Any] | str,
    *,
    name: str | None = None,
    month: Field = None,
    day: Field = None,
    weekday: Any = None,
    hour: Field = None,
    minute: Field = None,
    second: Field = 0,
    microsecond: int = 123_456,
    run_at_startup: bool = False,
    unique: bool = True,
    job_id: str | None = None,
    timeout: float | timedelta | None = None,
    keep_result: float | timedelta | None = 0,
    keep_result_forever: bool = False,
    max_tries: int = 1,
) -> CronJob:
    """arq's ``cron(...)``: run ``coroutine(ctx)`` at the times the fields match."""
    if isinstance(coroutine, str):
        raise ConfigurationError(
            f"cron({coroutine!r}): give the function itself, not its import path"
        )
    if not callable(coroutine):
        raise ConfigurationError(f"cron({coroutine!r}): not a function")
    job = CronJob(
        name=name or f"cron:{getattr(coroutine, '__qualname__', '')}",
        coroutine=coroutine,
        month=month,
        day=day,
        weekday=weekday,
        hour=hour,
        minute=minute,
        second=second,
        microsecond=microsecond,
        run_at_startup=run_at_startup,
        unique=unique,
        job_id=job_id,
        timeout=_seconds(timeout),
        keep_result=_seconds(keep_result),
        keep_result_forever=keep_result_forever,
        max_tries=max_tries,
    )
    _ = job.expression  # check the fields now, naming the bad one
    return job


def as_cron_job(obj: Any) -> CronJob:
    """A ``CronJob`` from ours or from anything shaped like arq's (``arq.cron.CronJob``:
    ``name``, ``coroutine`` and the time fields as attributes)."""
    if isinstance(obj, CronJob):
        return obj
    if not hasattr(obj, "coroutine") or not hasattr(obj, "name"):
        raise ConfigurationError(
            f"WorkerSettings.cron_jobs takes cron(...) jobs (tether.cron or arq.cron), not {obj!r}"
        )
    return cron(
        obj.coroutine,
        name=obj.name,
        **{
            attr: getattr(obj, attr)
            for attr in (
                "month", "day", "weekday", "hour", "minute", "second", "microsecond",
                "run_at_startup", "unique", "job_id", "timeout", "keep_result",
                "keep_result_forever", "max_tries",
            )
            if hasattr(obj, attr)
        },
    )  # fmt: skip


def cron_jobs_of(values: Iterable[Any]) -> list[CronJob]:
    jobs = [as_cron_job(v) for v in values]
    names = [j.name for j in jobs]
    for name in names:
        if names.count(name) > 1:
            raise ConfigurationError(
                f"two cron jobs are named {name!r}: give one another name with cron(f, name=...)"
            )
    return jobs


async def register_cron_jobs(
    transport: MachineTransport, jobs: Iterable[CronJob], timezone: str
) -> None:
    """Put each cron job's schedule through the machine's own route (unchanged ones stay
    as they are), and trigger those that run at startup."""
    jobs = list(jobs)
    await transport.put_schedules(
        [
            {"name": j.name, "function": j.name, "cron": j.expression, "timezone": timezone}
            for j in jobs
        ],
        [j.name for j in jobs if j.run_at_startup],
    )
    for job in jobs:
        if job.run_at_startup:
            log.info("cron job %s triggered at startup", job.name)


def zone_name(value: Any) -> str:
    """``WorkerSettings.timezone`` as a zone name: a name, a ``ZoneInfo`` or UTC."""
    if value is None:
        return "UTC"
    if isinstance(value, str):
        return value
    key = getattr(value, "key", None)
    if isinstance(key, str):
        return key
    if isinstance(value, tzinfo) and value.utcoffset(None) == timedelta(0):
        return "UTC"
    raise ConfigurationError(
        f"WorkerSettings.timezone must be a zone name like 'Europe/Paris' (or a ZoneInfo), "
        f"not {value!r}"
    )


def _seconds(value: float | timedelta | None) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def _values(field: str, value: Any) -> list[int]:
    items: list[Any] = list(value) if isinstance(value, set | frozenset | list | tuple) else [value]
    low, high = _RANGES[field]
    found: list[int] = []
    for v in items:
        if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
            raise ConfigurationError(
                f"cron {field} must be None, an integer from {low} to {high} or a set of "
                f"them, not {value!r}"
            )
        found.append(v)
    return sorted(found)


def _field(field: str, value: Field) -> str:
    if value is None:
        return "*"
    return ",".join(str(v) for v in _values(field, value))


def _weekday_field(value: Any) -> str:
    if value is None:
        return "*"
    items = sorted(value, key=str) if isinstance(value, set | frozenset | list | tuple) else [value]
    numbers: set[int] = set()
    for item in items:
        if isinstance(item, str):
            if item.lower() not in _WEEKDAYS:
                raise ConfigurationError(
                    f"cron weekday {item!r} is not one of {', '.join(_WEEKDAYS)}"
                )
            item = _WEEKDAYS[item.lower()]
        numbers.update(_values("weekday", item))
    # arq counts from Monday = 0; cron from Sunday = 0.
    return ",".join(str(n) for n in sorted((n + 1) % 7 for n in numbers))
