"""Requests waiting for a run to finish (GET /v1/runs/{id}?wait=) have their own message
kind, and the notifier's fallback re-check reads the run's status."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from tether.api.notify import Notifier
from tether.queue.config import QueueConfig
from tether.queue.runs import RunEngine


def notifier_for(redis: Redis, config: QueueConfig) -> Notifier:
    # Never started: these drive dispatch() and recheck() by hand.
    return Notifier(redis, redis, config.keys)


async def test_a_run_message_wakes_the_runs_waiters_and_a_job_message_does_not(
    redis: Redis, config: QueueConfig
) -> None:
    notifier = notifier_for(redis, config)
    with notifier.run_waiter("r1") as waiter, notifier.job_waiter("r1") as job_waiter:
        notifier.dispatch("j:r1")
        assert not waiter.event.is_set() and job_waiter.event.is_set()
        notifier.dispatch("r:r1")
        assert waiter.event.is_set()


async def test_the_recheck_wakes_a_run_waiter_only_once_the_run_finished(
    redis: Redis, config: QueueConfig, runs: RunEngine
) -> None:
    started = await runs.start("wf", None, version=1)
    notifier = notifier_for(redis, config)
    with notifier.run_waiter(started.id) as waiter:
        await notifier.recheck()
        woken_while_queued = waiter.event.is_set()
        await runs.cancel(started.id)
        await notifier.recheck()

        assert not woken_while_queued
        assert waiter.event.is_set()


async def test_a_finishing_run_publishes_its_own_message(
    redis: Redis, config: QueueConfig, runs: RunEngine
) -> None:
    started = await runs.start("wf", None, version=1)
    pubsub = redis.pubsub()
    await pubsub.subscribe(config.keys.for_id(started.id).channel)
    await pubsub.get_message(timeout=1.0)  # the subscription's confirmation

    await runs.cancel(started.id)

    messages = []
    for _ in range(20):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            messages.append(message["data"])
        if f"r:{started.id}" in messages:
            break
        await asyncio.sleep(0)
    await pubsub.aclose()
    assert f"r:{started.id}" in messages
