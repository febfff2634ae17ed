"""Rate limits (GCRA in the claim): at most N starts per period, per function and per
concurrency key. Jobs over the limit wait, never fail, and say why.

Time is simulated as elsewhere (queue_helpers): a limit's state is its theoretical
arrival time (ms) in {t:p}:rate:<fn>; moving it back is time passing."""

from __future__ import annotations

import asyncio
import time

from queue_helpers import make_due
from redis.asyncio import Redis

from tether.protocol import FunctionLimits, RateLimit
from tether.queue.engine import QueueEngine
from tether.queue.keys import PartitionKeys


async def claim_ids(engine: QueueEngine) -> list[str]:
    return [j.id for j in await engine.claim("m1", ["fn"], 100)]


async def pass_time(redis: Redis, key: str, ms: int) -> None:
    """``ms`` pass for the rate limit whose state is ``key``."""
    tat = float(await redis.get(key) or 0)
    await redis.set(key, str(tat - ms))


async def test_a_function_rate_lets_n_jobs_start_per_period(engine: QueueEngine) -> None:
    await engine.set_limits("fn", FunctionLimits(rate=RateLimit(limit=3, period=60)))
    for n in range(10):
        await engine.enqueue("fn", n, job_id=f"j{n}")

    assert await claim_ids(engine) == ["j0", "j1", "j2"]
    assert await claim_ids(engine) == []
    assert await engine.queue_depth("fn") == 7


async def test_jobs_over_a_function_rate_stay_queued_and_say_so(engine: QueueEngine) -> None:
    await engine.set_limits("fn", FunctionLimits(rate=RateLimit(limit=1, period=60)))
    await engine.enqueue("fn", None, job_id="a")
    await engine.enqueue("fn", None, job_id="b")
    await claim_ids(engine)

    record = await engine.get_job("b")

    assert record.status == "queued"
    assert record.waiting_on is not None
    assert record.waiting_on["kind"] == "rate_limit"
    assert (record.waiting_on["limit"], record.waiting_on["period"]) == (1, 60)


async def test_the_rate_lets_one_more_start_per_interval_that_passes(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.set_limits("fn", FunctionLimits(rate=RateLimit(limit=3, period=60)))
    for n in range(10):
        await engine.enqueue("fn", n, job_id=f"j{n}")
    await claim_ids(engine)

    await pass_time(redis, pk.rate("fn"), 20_000)  # one interval: 60 s / 3

    assert await claim_ids(engine) == ["j3"]


async def test_a_key_rate_delays_the_job_and_says_until_when(
    engine: QueueEngine, redis: Redis
) -> None:
    await engine.set_limits("fn", FunctionLimits(key_rate=RateLimit(limit=1, period=60)))
    for job_id, key in [("a1", "a"), ("a2", "a"), ("b1", "b")]:
        await engine.enqueue("fn", None, job_id=job_id, concurrency_key=key, concurrency_limit=9)
    now = await engine.server_time_ms()

    assert await claim_ids(engine) == ["a1", "b1"]
    record = await engine.get_job("a2")
    assert record.status == "delayed"
    assert record.waiting_on is not None and record.waiting_on["kind"] == "rate_limit"
    assert now + 55_000 <= record.waiting_on["until_ms"] <= now + 65_000


async def test_a_rate_delayed_job_starts_when_its_time_comes(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    await engine.set_limits("fn", FunctionLimits(key_rate=RateLimit(limit=1, period=60)))
    for job_id in ("first", "second"):
        await engine.enqueue("fn", None, job_id=job_id, concurrency_key="k", concurrency_limit=9)
    await claim_ids(engine)

    await pass_time(redis, pk.rate("fn", "k"), 60_000)
    await make_due(redis, engine, "second")
    await engine.promote()

    assert await claim_ids(engine) == ["second"]
    assert (await engine.get_job("second")).waiting_on is None


async def test_a_rate_limited_job_never_fails_for_it(engine: QueueEngine) -> None:
    await engine.set_limits("fn", FunctionLimits(rate=RateLimit(limit=1, period=60)))
    await engine.enqueue("fn", None, job_id="a", max_attempts=1)
    await engine.enqueue("fn", None, job_id="b", max_attempts=1)
    for _ in range(5):
        await claim_ids(engine)

    record = await engine.get_job("b")
    assert (record.status, record.attempt) == ("queued", 0)


async def test_starts_follow_a_short_real_period(engine: QueueEngine) -> None:
    # 2 per 0.2 s: a burst of 2, then one every 0.1 s, in Redis's own clock.
    await engine.set_limits("fn", FunctionLimits(rate=RateLimit(limit=2, period=0.2)))
    for n in range(40):
        await engine.enqueue("fn", n)
    started = time.monotonic()
    taken = 0
    while time.monotonic() - started < 1.0:
        taken += len(await engine.claim("m1", ["fn"], 100))
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - started

    assert 2 + int(elapsed / 0.1) - 3 <= taken <= 2 + int(elapsed / 0.1) + 1
