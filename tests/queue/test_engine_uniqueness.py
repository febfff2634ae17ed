"""A job id or idempotency key names one request: reused with the same function and
input it answers with the existing job; with another input it is refused, naming that
job (``IdempotencyKeyReused``), never passed off as the job asked for."""

from __future__ import annotations

import pytest

from tether.errors import IdempotencyConflict, IdempotencyKeyReused
from tether.limits import MAX_ID_LENGTH
from tether.queue.engine import QueueEngine, same_input


async def test_a_key_reused_with_the_same_input_answers_with_the_existing_job(
    engine: QueueEngine,
) -> None:
    first = await engine.enqueue("fn", {"a": 1}, idempotency_key="order-7")
    again = await engine.enqueue("fn", {"a": 1}, idempotency_key="order-7")

    assert (again.id, again.created) == (first.id, False)


async def test_a_key_reused_with_the_same_input_in_another_key_order_is_the_same_request(
    engine: QueueEngine,
) -> None:
    first = await engine.enqueue("fn", {"a": 1, "b": [1, 2]}, idempotency_key="k")
    again = await engine.enqueue("fn", {"b": [1, 2], "a": 1}, idempotency_key="k")

    assert (again.id, again.created) == (first.id, False)


async def test_a_key_reused_with_another_input_is_refused_naming_the_existing_job(
    engine: QueueEngine,
) -> None:
    first = await engine.enqueue("fn", {"a": 1}, idempotency_key="order-7")

    with pytest.raises(IdempotencyKeyReused) as info:
        await engine.enqueue("fn", {"a": 2}, idempotency_key="order-7")

    assert info.value.details["id"] == first.id
    assert info.value.details["idempotency_key"] == "order-7"
    assert info.value.status_code == 409
    assert (await engine.get_job(first.id)).input == {"a": 1}
    assert await engine.queue_depth("fn") == 1


async def test_an_explicit_job_id_reused_with_another_input_is_refused(
    engine: QueueEngine,
) -> None:
    await engine.enqueue("fn", 1, job_id="job-1")

    with pytest.raises(IdempotencyKeyReused) as info:
        await engine.enqueue("fn", 2, job_id="job-1")

    assert info.value.details["id"] == "job-1"
    assert (await engine.get_job("job-1")).input == 1


async def test_a_key_reused_for_another_function_is_a_conflict_but_not_a_reused_input(
    engine: QueueEngine,
) -> None:
    await engine.enqueue("fn", 1, idempotency_key="k")

    with pytest.raises(IdempotencyConflict) as info:
        await engine.enqueue("other", 1, idempotency_key="k")

    assert not isinstance(info.value, IdempotencyKeyReused)


async def test_a_key_of_the_longest_allowed_length_is_reused_like_any_other(
    engine: QueueEngine,
) -> None:
    key = "k" * MAX_ID_LENGTH
    first = await engine.enqueue("fn", 1, idempotency_key=key)

    again = await engine.enqueue("fn", 1, idempotency_key=key)
    with pytest.raises(IdempotencyKeyReused):
        await engine.enqueue("fn", 2, idempotency_key=key)

    assert (again.id, again.created) == (first.id, False)


async def test_a_key_reused_in_one_batch_makes_one_job_and_refuses_another_input(
    engine: QueueEngine,
) -> None:
    from tether.queue.engine import EnqueueRequest

    same = [
        EnqueueRequest("fn", 1, idempotency_key="b"),
        EnqueueRequest("fn", 1, idempotency_key="b"),
    ]
    first, second = await engine.enqueue_many(same)
    assert (first.created, second.created, second.id) == (True, False, first.id)

    with pytest.raises(IdempotencyKeyReused):
        await engine.enqueue_many([EnqueueRequest("fn", 2, idempotency_key="b")])


@pytest.mark.parametrize(
    ("stored", "sent", "same"),
    [
        ('{"a":1,"b":2}', '{"b":2,"a":1}', True),
        ("1", "1.0", False),
        ("1", "true", False),
        ("null", "null", True),
        ("[1,2]", "[2,1]", False),
        ('"x"', '"y"', False),
    ],
)
def test_inputs_are_compared_as_json_values(stored: str, sent: str, same: bool) -> None:
    assert same_input(stored, sent) is same
