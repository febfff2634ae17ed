"""Schedules: each tick fires exactly once, however many passes race and whatever
restarts; missed ticks follow the schedule's misfire policy.

Time is simulated by moving a schedule's next tick into the past (hash field and zset
score together, as the scripts keep them), never by sleeping.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio import Redis

from tether.errors import NotFound, ValidationFailed
from tether.protocol import TraceContext, job_trace
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.runs import RunEngine
from tether.queue.schedules import (
    SCHEDULE_TRANSITIONS,
    Plan,
    ScheduleDef,
    ScheduleEngine,
    ScheduleRecord,
)
from tether.queue.scripts import SCRIPT_NAMES

MINUTE = 60_000


@pytest.fixture
def schedules(redis: Redis, config: QueueConfig) -> ScheduleEngine:
    return ScheduleEngine(redis, config)


def every_minute(name: str = "tidy", **kw: Any) -> ScheduleDef:
    fields: dict[str, Any] = {"input": {"n": 1}, **kw}
    return ScheduleDef(name=name, kind="job", target="tidy", every_ms=MINUTE, **fields)


async def due_at(schedules: ScheduleEngine, name: str, tick: int) -> None:
    """The schedule's next tick is ``tick`` (in the past: it is due)."""
    await schedules.redis.hset(schedules.pk.schedule(name), "next_fire", tick)
    await schedules.redis.zadd(schedules.pk.schedules, {name: tick}, xx=True)


async def fire_as_planned(schedules: ScheduleEngine, read: ScheduleRecord, plan: Plan) -> list[Any]:
    """What a pass that read ``read`` and worked out ``plan`` sends (as ``fire_due``)."""
    assert read.next_fire is not None
    tick = "" if plan.tick is None else plan.tick
    reply = await schedules._scripts["fire_schedule"](
        [schedules.pk.schedule(read.name), schedules.pk.schedules],
        [schedules.pk.prefix, read.name, read.rev, read.next_fire, tick, plan.next_fire,
         "", 1000, -1000, 1000, 10, plan.missed],
    )  # fmt: skip
    return list(reply)


async def jobs_of(engine: QueueEngine, function: str) -> list[str]:
    page, _ = await engine.list_jobs(function=function, limit=1000)
    return [job.id for job in page]


async def minutes_ago(schedules: ScheduleEngine, n: int) -> int:
    """The tick of an every-minute schedule ``n`` whole minutes back."""
    now = await schedules.now_ms()
    return (now // MINUTE - n) * MINUTE


# -- firing ---------------------------------------------------------------------------


async def test_a_due_tick_starts_a_job_whose_id_is_the_tick(
    schedules: ScheduleEngine, engine: QueueEngine
) -> None:
    await schedules.put(every_minute())
    tick = await minutes_ago(schedules, 0)
    await due_at(schedules, "tidy", tick)

    [fired] = await schedules.fire_due()

    assert fired.id == f"sched:tidy:{tick}" and fired.created
    job = await engine.get_job(fired.id)
    assert (job.function, job.input, job.status) == ("tidy", {"n": 1}, "queued")
    [claimed] = await engine.claim("m1", ["tidy"], 1)
    assert claimed.id == fired.id


async def test_a_fired_schedule_moves_on_to_its_next_tick(schedules: ScheduleEngine) -> None:
    await schedules.put(every_minute())
    tick = await minutes_ago(schedules, 0)
    await due_at(schedules, "tidy", tick)

    await schedules.fire_due()

    record = await schedules.get("tidy")
    assert record.next_fire == tick + MINUTE
    assert (record.fired, record.last_tick, record.missed) == (1, tick, 0)


async def test_a_schedule_not_yet_due_fires_nothing(schedules: ScheduleEngine) -> None:
    await schedules.put(every_minute())

    assert await schedules.fire_due() == []


async def test_passes_racing_on_one_tick_fire_it_once(
    redis: Redis, config: QueueConfig, schedules: ScheduleEngine, engine: QueueEngine
) -> None:
    await schedules.put(every_minute())
    tick = await minutes_ago(schedules, 0)
    await due_at(schedules, "tidy", tick)
    racers = [ScheduleEngine(redis, config) for _ in range(8)]

    results = await asyncio.gather(*(r.fire_due() for r in racers))

    started = [f for fired in results for f in fired if f.created]
    assert [f.id for f in started] == [f"sched:tidy:{tick}"]
    assert (await schedules.get("tidy")).fired == 1
    assert len(await jobs_of(engine, "tidy")) == 1


async def test_a_pass_after_a_restart_fires_nothing_already_fired(
    redis: Redis, config: QueueConfig, schedules: ScheduleEngine
) -> None:
    await schedules.put(every_minute())
    await due_at(schedules, "tidy", await minutes_ago(schedules, 0))
    await schedules.fire_due()

    restarted = ScheduleEngine(redis, config)

    assert await restarted.fire_due() == []


async def test_a_tick_whose_job_exists_starts_no_second_one(
    schedules: ScheduleEngine, engine: QueueEngine
) -> None:
    # Even a schedule put back to a tick it already fired (a restored backup, say) cannot
    # start that tick twice: the tick is the job's id.
    await schedules.put(every_minute())
    tick = await minutes_ago(schedules, 0)
    await due_at(schedules, "tidy", tick)
    await schedules.fire_due()
    await due_at(schedules, "tidy", tick)

    [again] = await schedules.fire_due()

    assert again.id == f"sched:tidy:{tick}" and not again.created
    assert (await schedules.get("tidy")).fired == 1
    assert len(await jobs_of(engine, "tidy")) == 1


async def test_a_pass_that_read_an_old_definition_fires_nothing(
    redis: Redis, config: QueueConfig, schedules: ScheduleEngine
) -> None:
    await schedules.put(every_minute())
    tick = await minutes_ago(schedules, 0)
    await due_at(schedules, "tidy", tick)
    stale = await schedules.get("tidy")
    await schedules.put(every_minute(input={"n": 2}))  # redefined in between

    reply = await schedules._scripts["fire_schedule"](
        [schedules.pk.schedule("tidy"), schedules.pk.schedules],
        [schedules.pk.prefix, "tidy", stale.rev, tick, tick, tick + MINUTE, "", 1000, -1000,
         1000, 10, 0],
    )  # fmt: skip

    assert reply == [-3]


# -- missed ticks ---------------------------------------------------------------------


async def test_skip_fires_a_tick_that_is_late_within_its_grace(
    schedules: ScheduleEngine,
) -> None:
    await schedules.put(every_minute(grace_ms=5 * MINUTE))
    tick = await minutes_ago(schedules, 2)
    await due_at(schedules, "tidy", tick)

    [fired] = await schedules.fire_due()

    assert fired.id == f"sched:tidy:{await minutes_ago(schedules, 0)}"
    assert (await schedules.get("tidy")).missed == 2  # the two ticks before it


def test_a_pass_less_than_one_interval_late_fires_the_tick_and_misses_none() -> None:
    tick = 1000 * MINUTE

    for late in (0, 1, MINUTE - 1):
        assert every_minute().plan(tick, tick + late) == Plan(tick, tick + MINUTE, 0)


def test_a_pass_two_intervals_late_fires_the_latest_tick_and_misses_the_two_before() -> None:
    tick = 1000 * MINUTE

    plan = every_minute().plan(tick, tick + 2 * MINUTE + 5)

    assert plan == Plan(tick + 2 * MINUTE, tick + 3 * MINUTE, 2)


async def test_a_pass_that_lost_the_race_for_a_tick_counts_no_tick_missed(
    schedules: ScheduleEngine,
) -> None:
    # Two passes read the schedule at once; the later one's clock says two more ticks are
    # due. The earlier fires the tick; the later finds the schedule moved on: its plan,
    # missed ticks included, counts for nothing.
    d = every_minute(grace_ms=5 * MINUTE)
    await schedules.put(d)
    tick = await minutes_ago(schedules, 0)
    await due_at(schedules, "tidy", tick)
    read = await schedules.get("tidy")
    winner, loser = d.plan(tick, tick + 10), d.plan(tick, tick + 2 * MINUTE + 10)
    assert loser.missed == 2

    assert (await fire_as_planned(schedules, read, winner))[0] == 1
    assert await fire_as_planned(schedules, read, loser) == [-3]

    record = await schedules.get("tidy")
    assert (record.fired, record.missed, record.last_tick) == (1, 0, tick)
    assert record.next_fire == tick + MINUTE


async def test_skip_passes_over_ticks_missed_longer_than_the_grace(
    schedules: ScheduleEngine, engine: QueueEngine
) -> None:
    await schedules.put(every_minute(grace_ms=0))
    await due_at(schedules, "tidy", await minutes_ago(schedules, 10))
    now = await schedules.now_ms()

    [passed] = await schedules.fire_due()

    record = await schedules.get("tidy")
    assert passed.id == "" and not passed.created
    assert record.next_fire == (now // MINUTE + 1) * MINUTE
    assert record.fired == 0 and record.missed >= 10
    assert await jobs_of(engine, "tidy") == []


async def test_catch_up_once_fires_one_job_for_a_long_outage(
    schedules: ScheduleEngine, engine: QueueEngine
) -> None:
    await schedules.put(every_minute(misfire="catch_up_once", grace_ms=0))
    await due_at(schedules, "tidy", await minutes_ago(schedules, 30))

    [fired] = await schedules.fire_due()
    assert await schedules.fire_due() == []

    assert fired.created
    assert len(await jobs_of(engine, "tidy")) == 1
    record = await schedules.get("tidy")
    assert record.fired == 1 and record.missed == 30
    assert record.next_fire is not None and record.next_fire > await schedules.now_ms()


# -- pause, resume, trigger, redefine, delete -----------------------------------------


async def test_a_paused_schedule_fires_no_tick(schedules: ScheduleEngine) -> None:
    await schedules.put(every_minute())
    await due_at(schedules, "tidy", await minutes_ago(schedules, 0))

    paused = await schedules.pause("tidy")

    assert paused.paused and paused.next_fire is None
    assert await schedules.fire_due() == []


async def test_resuming_goes_on_from_the_first_tick_after_now(
    schedules: ScheduleEngine,
) -> None:
    await schedules.put(every_minute())
    await schedules.pause("tidy")
    now = await schedules.now_ms()

    resumed = await schedules.resume("tidy")

    assert not resumed.paused
    assert resumed.next_fire == (now // MINUTE + 1) * MINUTE
    assert await schedules.fire_due() == []


async def test_a_schedule_created_paused_is_listed_but_not_due(
    schedules: ScheduleEngine,
) -> None:
    await schedules.put(every_minute(), paused=True)

    [listed] = await schedules.list_schedules()

    assert listed.paused
    assert await schedules.fire_due() == []


async def test_putting_the_same_definition_again_changes_nothing(
    schedules: ScheduleEngine,
) -> None:
    first, created = await schedules.put(every_minute())
    await schedules.pause("tidy")

    again, created_again = await schedules.put(every_minute())

    assert created and not created_again
    assert again.rev == first.rev and again.paused


async def test_redefining_a_schedule_keeps_its_pause_and_its_counts(
    schedules: ScheduleEngine,
) -> None:
    await schedules.put(every_minute())
    await due_at(schedules, "tidy", await minutes_ago(schedules, 0))
    await schedules.fire_due()
    await schedules.pause("tidy")

    changed, created = await schedules.put(every_minute(input={"n": 2}))

    assert not created and changed.paused and changed.fired == 1
    assert changed.definition.input == {"n": 2}


async def test_trigger_starts_now_and_leaves_the_next_tick(
    schedules: ScheduleEngine, engine: QueueEngine
) -> None:
    before, _ = await schedules.put(every_minute())

    fired = await schedules.trigger("tidy")

    assert fired.created and fired.id.startswith("sched:tidy@")
    assert (await engine.get_job(fired.id)).status == "queued"
    assert (await schedules.get("tidy")).next_fire == before.next_fire


async def test_trigger_with_a_key_starts_one_job_however_often_it_is_sent(
    schedules: ScheduleEngine,
) -> None:
    await schedules.put(every_minute())

    first = await schedules.trigger("tidy", key="deploy-42")
    second = await schedules.trigger("tidy", key="deploy-42")

    assert first.created and not second.created and first.id == second.id


async def test_a_paused_schedule_can_still_be_triggered(schedules: ScheduleEngine) -> None:
    await schedules.put(every_minute(), paused=True)

    assert (await schedules.trigger("tidy")).created


async def test_deleting_a_schedule_stops_it_and_keeps_what_it_started(
    schedules: ScheduleEngine, engine: QueueEngine
) -> None:
    await schedules.put(every_minute())
    fired = await schedules.trigger("tidy")

    await schedules.delete("tidy")

    with pytest.raises(NotFound):
        await schedules.get("tidy")
    assert await schedules.list_schedules() == []
    assert (await engine.get_job(fired.id)).status == "queued"


async def test_unknown_schedules_are_not_found(schedules: ScheduleEngine) -> None:
    for action in (schedules.pause, schedules.resume, schedules.delete, schedules.trigger):
        with pytest.raises(NotFound):
            await action("nope")


# -- runs -----------------------------------------------------------------------------


async def test_a_workflow_schedule_starts_a_run_of_the_served_version(
    redis: Redis, config: QueueConfig, schedules: ScheduleEngine
) -> None:
    await schedules.put(ScheduleDef(name="nightly", kind="run", target="report", every_ms=MINUTE))
    tick = await minutes_ago(schedules, 0)
    await due_at(schedules, "nightly", tick)

    async def served() -> dict[str, set[int]]:
        return {"report": {1, 3}}

    [fired] = await schedules.fire_due(versions=served)

    run = await RunEngine(redis, config).get(f"sched:nightly:{tick}")
    assert fired.created and run.workflow == "report" and run.version == 3
    assert run.status == "queued"


async def test_a_workflow_schedule_with_no_machine_yet_starts_a_waiting_run(
    redis: Redis, config: QueueConfig, schedules: ScheduleEngine
) -> None:
    await schedules.put(ScheduleDef(name="nightly", kind="run", target="report", every_ms=MINUTE))

    fired = await schedules.trigger("nightly")

    run = await RunEngine(redis, config).get(fired.id)
    assert run.version is None and run.waiting_on == {"kind": "version", "workflow": "report"}


# -- definitions ----------------------------------------------------------------------


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


def test_cron_ticks_are_read_in_the_schedules_time_zone_across_a_dst_change() -> None:
    nine_in_paris = ScheduleDef(
        name="n", kind="job", target="f", cron="0 9 * * *", timezone="Europe/Paris"
    )
    # Paris moves from UTC+1 to UTC+2 on 2026-03-29.
    first = nine_in_paris.next_tick(_ms(datetime(2026, 3, 28, 0, 0, tzinfo=UTC)))
    second = nine_in_paris.next_tick(first)

    assert _utc(first) == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    assert _utc(second) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def test_a_cron_tick_in_the_hour_a_dst_change_skips_fires_an_hour_on() -> None:
    half_two = ScheduleDef(
        name="n", kind="job", target="f", cron="30 2 * * *", timezone="Europe/Paris"
    )

    tick = half_two.next_tick(_ms(datetime(2026, 3, 28, 12, 0, tzinfo=UTC)))

    # 02:30 does not exist in Paris on 2026-03-29: it fires at 03:30 CEST (01:30 UTC).
    assert _utc(tick) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_a_cron_tick_in_the_hour_a_dst_change_repeats_fires_once() -> None:
    half_two = ScheduleDef(
        name="n", kind="job", target="f", cron="30 2 * * *", timezone="Europe/Paris"
    )

    first = half_two.next_tick(_ms(datetime(2026, 10, 24, 12, 0, tzinfo=UTC)))
    second = half_two.next_tick(first)

    # 02:30 happens twice in Paris on 2026-10-25: the first one fires, then the next day's.
    assert _utc(first) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert _utc(second) == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)


def test_a_cron_with_a_seconds_field_ticks_within_the_minute() -> None:
    every_15s = ScheduleDef(name="n", kind="job", target="f", cron="* * * * * */15")

    tick = every_15s.next_tick(_ms(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)))

    assert _utc(tick) == datetime(2026, 1, 1, 0, 0, 15, tzinfo=UTC)


def test_interval_ticks_are_multiples_of_the_interval() -> None:
    hourly = ScheduleDef(name="n", kind="job", target="f", every_ms=3_600_000)

    assert hourly.next_tick(3_600_000 * 5 + 1) == 3_600_000 * 6
    assert hourly.next_tick(3_600_000 * 6) == 3_600_000 * 7


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"cron": "not a cron"}, "cron"),
        ({"cron": "* * * * *", "every_ms": MINUTE}, "cron"),
        ({}, "cron"),
        ({"every_ms": 10}, "every"),
        ({"every_ms": MINUTE, "timezone": "Mars/Olympus"}, "timezone"),
        ({"every_ms": MINUTE, "misfire": "sometimes"}, "misfire"),
        ({"every_ms": MINUTE, "name": "x" * 151}, "name"),
        ({"every_ms": MINUTE, "name": "a b"}, "name"),
        ({"every_ms": MINUTE, "target": "../etc"}, "function"),
    ],
)
async def test_a_bad_definition_is_refused_naming_its_field(
    schedules: ScheduleEngine, fields: dict[str, object], field: str
) -> None:
    base: dict[str, object] = {"name": "n", "kind": "job", "target": "f", **fields}

    with pytest.raises(ValidationFailed) as err:
        await schedules.put(ScheduleDef(**base))  # type: ignore[arg-type]

    assert err.value.details["field"] == field
    assert await schedules.list_schedules() == []


def test_every_schedule_script_is_in_the_transition_table() -> None:
    in_table = {s for scripts in SCHEDULE_TRANSITIONS.values() for s in scripts}

    assert in_table == {n for n in SCRIPT_NAMES if n.endswith("_schedule")}


# -- attacks --------------------------------------------------------------------------


async def test_a_trigger_key_cannot_take_the_id_of_another_schedules_tick(
    schedules: ScheduleEngine, engine: QueueEngine
) -> None:
    # "a" triggered with key <tick> must not take "a:trigger"'s tick at <tick>, nor any
    # other schedule's: triggers carry '@', which no schedule name (nor tick id) has.
    await schedules.put(every_minute("a"))
    await schedules.put(every_minute("a:trigger"))
    tick = await minutes_ago(schedules, 0)
    await schedules.trigger("a", key=str(tick))
    await due_at(schedules, "a:trigger", tick)

    [fired] = await schedules.fire_due()

    assert fired.id == f"sched:a:trigger:{tick}" and fired.created


async def test_a_schedule_name_with_an_at_sign_is_refused(schedules: ScheduleEngine) -> None:
    with pytest.raises(ValidationFailed) as err:
        await schedules.put(every_minute("a@1"))

    assert err.value.details["field"] == "name"


async def test_a_cron_that_never_fires_is_refused(schedules: ScheduleEngine) -> None:
    with pytest.raises(ValidationFailed, match="never fires"):
        await schedules.put(ScheduleDef(name="n", kind="job", target="f", cron="0 0 30 2 *"))


async def test_a_schedule_whose_ticks_cannot_be_worked_out_does_not_stop_the_others(
    schedules: ScheduleEngine,
) -> None:
    await schedules.put(every_minute("broken"))
    await schedules.put(every_minute("fine"))
    tick = await minutes_ago(schedules, 0)
    await due_at(schedules, "broken", tick)
    await due_at(schedules, "fine", tick)
    # Its stored definition went bad behind the API's back (a hand edit, an old zone).
    await schedules.redis.hset(
        schedules.pk.schedule("broken"), mapping={"cron": "0 0 30 2 *", "every_ms": ""}
    )

    fired = await schedules.fire_due()

    assert [f.name for f in fired] == ["fine"]


async def test_a_scheduled_run_keeps_the_trace_its_id_derives_and_its_activation_copies_it(
    redis: Redis, config: QueueConfig, schedules: ScheduleEngine, engine: QueueEngine
) -> None:
    await schedules.put(ScheduleDef(name="nightly", kind="run", target="report", every_ms=MINUTE))
    tick = await minutes_ago(schedules, 0)
    await due_at(schedules, "nightly", tick)

    async def served() -> dict[str, set[int]]:
        return {"report": {1}}

    [fired] = await schedules.fire_due(versions=served)

    run = await RunEngine(redis, config).get(fired.id)
    # What the Lua script stores is what the Python side derives from the id.
    assert TraceContext.from_field(run.trace) == job_trace(fired.id, None)
    activation = await engine.get_job(f"{fired.id}:a1")
    assert activation.trace == run.trace
