"""enqueue: create a job, queued or delayed; the same id or idempotency key never makes two."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from tether.errors import IdempotencyConflict, PayloadTooLarge, ValidationFailed
from tether.queue.config import QueueConfig
from tether.queue.engine import EnqueueRequest, QueueEngine
from tether.queue.keys import PartitionKeys


async def test_enqueue_creates_a_queued_job_on_its_functions_ready_stream(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    enqueued = await engine.enqueue("fn", {"a": 1})

    assert enqueued.created and enqueued.status == "queued"
    record = await engine.get_job(enqueued.id)
    assert (record.function, record.input, record.attempt) == ("fn", {"a": 1}, 0)
    entries = await redis.xrange(pk.ready("fn"))
    assert [fields["id"] for _, fields in entries] == [enqueued.id]


async def test_enqueue_with_the_same_id_returns_the_existing_job(engine: QueueEngine) -> None:
    first = await engine.enqueue("fn", 1, job_id="job-1")
    second = await engine.enqueue("fn", 1, job_id="job-1")

    assert (second.id, second.created) == ("job-1", False)
    assert first.created
    assert (await engine.get_job("job-1")).input == 1
    assert await engine.queue_depth("fn") == 1


async def test_enqueue_with_the_same_idempotency_key_returns_the_existing_job(
    engine: QueueEngine,
) -> None:
    first = await engine.enqueue("fn", 1, idempotency_key="order-7")
    second = await engine.enqueue("fn", 1, idempotency_key="order-7")

    assert second.id == first.id and not second.created
    assert await engine.queue_depth("fn") == 1


async def test_idempotency_key_finds_a_job_created_under_an_explicit_id(
    engine: QueueEngine,
) -> None:
    await engine.enqueue("fn", 1, job_id="explicit", idempotency_key="k")
    again = await engine.enqueue("fn", 1, job_id="another-id", idempotency_key="k")

    assert (again.id, again.created) == ("explicit", False)


async def test_an_idempotency_key_naming_another_function_is_a_conflict(
    engine: QueueEngine,
) -> None:
    await engine.enqueue("fn", 1, idempotency_key="k")

    with pytest.raises(IdempotencyConflict) as info:
        await engine.enqueue("other", 1, idempotency_key="k")
    assert info.value.details["function"] == "fn"
    assert await engine.queue_depth("other") == 0


async def test_an_id_naming_a_job_of_another_function_is_a_conflict(
    engine: QueueEngine,
) -> None:
    await engine.enqueue("fn", 1, job_id="j")

    with pytest.raises(IdempotencyConflict):
        await engine.enqueue("other", 1, job_id="j")


async def test_enqueue_with_a_delay_makes_a_delayed_job_due_after_the_delay(
    engine: QueueEngine, redis: Redis, pk: PartitionKeys
) -> None:
    enqueued = await engine.enqueue("fn", None, delay_ms=60_000)

    assert enqueued.status == "delayed"
    record = await engine.get_job(enqueued.id)
    assert record.scheduled_at == record.enqueued_at + 60_000  # type: ignore[operator]
    assert await redis.zscore(pk.delayed, enqueued.id) == record.scheduled_at
    assert await engine.queue_depth("fn") == 0


async def test_input_over_the_size_limit_is_refused_with_payload_too_large(
    redis: Redis, config: QueueConfig
) -> None:
    engine = QueueEngine(redis, QueueConfig(keys=config.keys, max_payload_bytes=100))

    with pytest.raises(PayloadTooLarge) as info:
        await engine.enqueue("fn", "x" * 200)
    assert info.value.details == {"field": "input", "size": 202, "limit": 100}
    assert await engine.queue_depth("fn") == 0


async def test_input_that_is_not_json_is_refused(engine: QueueEngine) -> None:
    with pytest.raises(ValidationFailed) as info:
        await engine.enqueue("fn", object())
    assert info.value.details["field"] == "input"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"job_id": ""}, "id"),
        ({"job_id": "has space"}, "id"),
        ({"job_id": "x" * 201}, "id"),
        ({"job_id": "brace{"}, "id"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"parent": "bad/parent"}, "parent"),
        ({"delay_ms": -1}, "delay"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout_ms": -5}, "timeout"),
    ],
)
async def test_bad_enqueue_arguments_are_refused_naming_the_field(
    engine: QueueEngine, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        await engine.enqueue("fn", None, **kwargs)  # type: ignore[arg-type]
    assert info.value.details["field"] == field
    assert await engine.queue_depth("fn") == 0


@pytest.mark.parametrize("function", ["", "a b", "q{x}", "f" * 201])
async def test_a_bad_function_name_is_refused(engine: QueueEngine, function: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        await engine.enqueue(function, None)
    assert info.value.details["field"] == "function"


async def test_enqueue_many_answers_each_request_in_order(engine: QueueEngine) -> None:
    await engine.enqueue("fn", 0, job_id="old")
    answers = await engine.enqueue_many(
        [EnqueueRequest("fn", 1, job_id="new"), EnqueueRequest("fn", 0, job_id="old")]
    )

    assert [(a.id, a.created) for a in answers] == [("new", True), ("old", False)]


async def test_a_child_job_id_starts_with_its_parent_run_id(engine: QueueEngine) -> None:
    enqueued = await engine.enqueue("fn", None, job_id="step-1", parent="run-9")

    assert enqueued.id == "run-9:step-1"
    assert (await engine.get_job(enqueued.id)).parent == "run-9"


async def test_a_job_ready_at_once_is_scheduled_when_it_was_enqueued(engine: QueueEngine) -> None:
    enqueued = await engine.enqueue("fn", None)

    record = await engine.get_job(enqueued.id)

    assert record.enqueued_at is not None
    assert record.scheduled_at == record.enqueued_at
