"""The notifier's bookkeeping of waiters, without Redis: who a message wakes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from redis.asyncio import Redis

from tether.api.notify import FunctionWaiter, Notifier
from tether.queue.keys import Keys
from tether.queue.records import ClaimedJob


def make_notifier() -> Notifier:
    # Never started: these tests only drive dispatch() and the waiter registry.
    unused = Redis(host="127.0.0.1", port=1)
    return Notifier(unused, unused, Keys(prefix="unit"))


async def test_one_ready_message_wakes_one_waiter_of_its_function() -> None:
    notifier = make_notifier()
    with notifier.function_waiter(["add"]) as a, notifier.function_waiter(["add"]) as b:
        notifier.dispatch("q:add")
        assert [a.event.is_set(), b.event.is_set()] == [True, False]


async def test_successive_messages_wake_successive_waiters() -> None:
    notifier = make_notifier()
    with notifier.function_waiter(["add"]) as a, notifier.function_waiter(["add"]) as b:
        notifier.dispatch("q:add")
        notifier.dispatch("q:add")
        assert a.event.is_set() and b.event.is_set()


async def test_a_message_for_another_function_wakes_nobody() -> None:
    notifier = make_notifier()
    with notifier.function_waiter(["add"]) as waiter:
        notifier.dispatch("q:mul")
        assert not waiter.event.is_set()


async def test_a_wake_its_waiter_left_without_using_is_passed_on() -> None:
    notifier = make_notifier()
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(notifier.function_waiter(["add"]))
        with notifier.function_waiter(["add"]) as second:
            notifier.dispatch("q:add")
            assert (first.event.is_set(), second.event.is_set()) == (True, False)
            stack.close()  # the first leaves (say, its client hung up) before looking
            assert second.event.is_set()


async def test_a_finished_job_message_wakes_every_waiter_of_that_job() -> None:
    notifier = make_notifier()
    with (
        notifier.job_waiter("j1") as a,
        notifier.job_waiter("j1") as b,
        notifier.job_waiter("j2") as other,
    ):
        notifier.dispatch("j:j1")
        assert (a.event.is_set(), b.event.is_set(), other.event.is_set()) == (True, True, False)


async def test_a_message_of_n_ready_jobs_wakes_n_waiters() -> None:
    notifier = make_notifier()
    with (
        notifier.function_waiter(["add"]) as a,
        notifier.function_waiter(["add"]) as b,
        notifier.function_waiter(["add"]) as c,
    ):
        notifier.dispatch("q:add 2")
        assert sorted((a.event.is_set(), b.event.is_set(), c.event.is_set())) == [
            False,
            True,
            True,
        ]


async def test_a_batch_finished_message_wakes_the_waiters_of_every_job_in_it() -> None:
    notifier = make_notifier()
    with (
        notifier.job_waiter("j1") as a,
        notifier.job_waiter("j2") as b,
        notifier.job_waiter("j3") as other,
    ):
        notifier.dispatch("j:j1 j2")
        assert (a.event.is_set(), b.event.is_set(), other.event.is_set()) == (True, True, False)


async def test_waiters_leave_no_trace() -> None:
    notifier = make_notifier()
    with notifier.function_waiter(["add", "mul"]), notifier.job_waiter("j1"):
        assert (notifier.waiting_polls, notifier.waiting_jobs) == (1, 1)
    assert (notifier.waiting_polls, notifier.waiting_jobs) == (0, 0)
    assert notifier._by_function == {} and notifier._by_job == {}


JOB = ClaimedJob("job-1", "add", None, attempt=1, max_attempts=1, token="7", timeout_ms=0)


@contextlib.asynccontextmanager
async def parked(*waiters: FunctionWaiter) -> AsyncIterator[None]:
    """The waiters sit in their wait, as long polls with nothing to do."""
    tasks = [asyncio.create_task(w.wait(30)) for w in waiters]
    await asyncio.sleep(0)
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_take_idle_reserves_a_parked_poll_of_a_named_machine() -> None:
    notifier = make_notifier()
    with (
        notifier.function_waiter(["add"]) as anonymous,
        notifier.function_waiter(["add"], "m1", 5) as named,
    ):
        async with parked(anonymous, named):
            assert notifier.take_idle("add") is named
            assert named.reserved and not anonymous.reserved
            assert notifier.take_idle("add") is None  # the only named one is taken


async def test_take_idle_leaves_a_poll_that_is_claiming_for_itself() -> None:
    notifier = make_notifier()
    with notifier.function_waiter(["add"], "m1", 5):
        assert notifier.take_idle("add") is None


async def test_a_ready_message_skips_a_poll_reserved_for_a_hand_off() -> None:
    notifier = make_notifier()
    with (
        notifier.function_waiter(["add"], "m1", 1) as reserved,
        notifier.function_waiter(["add"], "m2", 1) as other,
    ):
        async with parked(reserved, other):
            assert notifier.take_idle("add") is reserved
            notifier.dispatch("q:add")
            assert not reserved.event.is_set() and other.event.is_set()


async def test_jobs_handed_to_a_waiting_poll_wake_it_and_are_taken_once() -> None:
    notifier = make_notifier()
    with notifier.function_waiter(["add"], "m1", 1) as waiter:
        async with parked(waiter):
            assert notifier.take_idle("add") is waiter
            assert waiter.hand([JOB])
            assert waiter.event.is_set() and not waiter.reserved
        assert waiter.take() == [JOB]
        assert waiter.take() == []


async def test_a_poll_that_has_answered_refuses_jobs_handed_too_late() -> None:
    notifier = make_notifier()
    with notifier.function_waiter(["add"], "m1", 1) as waiter:
        async with parked(waiter):
            assert notifier.take_idle("add") is waiter
    assert not waiter.hand([JOB])
    assert waiter.take() == []


async def test_a_poll_whose_client_left_refuses_handed_jobs() -> None:
    notifier = make_notifier()
    with notifier.function_waiter(["add"], "m1", 1) as waiter:
        async with parked(waiter):
            assert notifier.take_idle("add") is waiter
            waiter.client_gone()
            assert not waiter.hand([JOB])
