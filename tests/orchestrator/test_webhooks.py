"""Webhooks: run events recorded by the scripts that change the run, delivered by the
orchestrator to a real HTTP receiver on loopback, signed, retried with backoff, given up
after the last attempt, and sent once however many orchestrators run."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis
from webhook_receiver import Receiver

from tether.errors import NotFound, RegistryFull, ValidationFailed
from tether.limits import MAX_WEBHOOK_URL_LENGTH, MAX_WEBHOOKS_PER_NAMESPACE
from tether.orchestrator.loop import Orchestrator
from tether.orchestrator.webhooks import WebhookPasses
from tether.protocol import ApprovalWait, ErrorInfo, activation_function
from tether.queue.config import QueueConfig
from tether.queue.engine import QueueEngine
from tether.queue.keys import Keys
from tether.queue.redis_py import close_client, redis_client
from tether.queue.runs import RunEngine
from tether.queue.scripts import LUA_DIR, SCRIPT_NAMES, script_source
from tether.queue.webhooks import (
    DELIVERY_TRANSITIONS,
    HOOK_EVENT_SCRIPTS,
    WEBHOOK_SCRIPTS,
    DeliveryState,
    WebhookEngine,
    check_webhook_url,
)
from tether.webhooks import SignatureError, sign, verify_signature

FN = activation_function("w", 1)


@pytest.fixture
def config(keys: Keys) -> QueueConfig:
    # Retries a few ms apart, so a test sees them all without waiting seconds.
    return QueueConfig(
        keys=keys,
        webhook_max_attempts=3,
        webhook_backoff_ms=10,
        webhook_timeout_ms=10_000,
        public_url="https://tether.example.com",
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def hooks(redis: Redis, config: QueueConfig) -> WebhookEngine:
    return WebhookEngine(redis, config)


@pytest.fixture
def runs(redis: Redis, config: QueueConfig) -> RunEngine:
    return RunEngine(redis, config)


async def running(engine: QueueEngine, runs: RunEngine, run_id: str) -> tuple[str, str]:
    await runs.start("w", {"order": 7}, run_id=run_id, version=1)
    job = (await engine.claim("m1", [FN], 1))[0]
    await engine.heartbeat("m1")
    await runs.begin(run_id, job.id, job.token, machine=job.machine)
    return job.id, job.token


async def awaiting_approval(engine: QueueEngine, runs: RunEngine, run_id: str) -> None:
    job_id, token = await running(engine, runs, run_id)
    wait = ApprovalWait(0, "ship", prompt="Ship order 7?", data={"total": 42})
    await runs.suspend(run_id, job_id, token, wait, machine="m1")


async def completed(engine: QueueEngine, runs: RunEngine, run_id: str) -> None:
    job_id, token = await running(engine, runs, run_id)
    await runs.complete(run_id, job_id, token, {"shipped": True}, machine="m1")


async def failed(engine: QueueEngine, runs: RunEngine, run_id: str) -> None:
    job_id, token = await running(engine, runs, run_id)
    error = ErrorInfo(type="ValueError", message="no stock", traceback="Traceback ...")
    await runs.fail(run_id, job_id, token, error, machine="m1", retryable=False)


async def deliver(orch: Orchestrator, until: int = 1, ticks: int = 200) -> None:
    """Tick until ``until`` requests reached the receiver's list (or ticks run out)."""
    for _ in range(ticks):
        await orch.tick()
        await orch.webhooks.drain()
        if await _settled(orch):
            return
        await asyncio.sleep(0.01)
    del until


async def _settled(orch: Orchestrator) -> bool:
    hooks = orch.webhooks.hooks
    for pk in hooks.keys.all_partitions():
        if await hooks.redis.zcard(pk.hook_due):
            return False
    return True


# -- delivery ---------------------------------------------------------------------------


async def test_an_approval_wait_is_delivered_signed_with_the_run_and_a_dashboard_link(
    engine: QueueEngine, runs: RunEngine, hooks: WebhookEngine, receiver: Receiver
) -> None:
    hook = await hooks.create(receiver.url)
    await awaiting_approval(engine, runs, "order-7")

    await deliver(Orchestrator(engine))

    [request] = receiver.received
    verify_signature(hook.secret, request.headers["tether-signature"], request.body)
    body = request.json()
    assert request.headers["tether-event"] == body["type"] == "run.awaiting_approval"
    assert body["run"]["id"] == "order-7" and body["run"]["workflow"] == "w"
    assert body["run"]["status"] == "waiting"
    assert body["waiting_on"]["key"] == "ship"
    assert body["waiting_on"]["prompt"] == "Ship order 7?"
    assert body["waiting_on"]["data"] == {"total": 42}
    assert body["links"]["dashboard"] == "https://tether.example.com/dashboard/#/runs/order-7"
    assert request.headers["tether-delivery"] == f"{body['id']}.{hook.id}"


async def test_a_completed_run_is_delivered_with_its_result(
    engine: QueueEngine, runs: RunEngine, hooks: WebhookEngine, receiver: Receiver
) -> None:
    await hooks.create(receiver.url)
    await completed(engine, runs, "r1")

    await deliver(Orchestrator(engine))

    [body] = [r.json() for r in receiver.received]
    assert body["type"] == "run.completed"
    assert body["run"]["result"] == {"shipped": True}
    assert body["run"]["result_truncated"] is False


async def test_a_failed_run_is_delivered_with_its_error_but_not_its_traceback(
    engine: QueueEngine, runs: RunEngine, hooks: WebhookEngine, receiver: Receiver
) -> None:
    await hooks.create(receiver.url)
    await failed(engine, runs, "r1")

    await deliver(Orchestrator(engine))

    [body] = [r.json() for r in receiver.received]
    assert body["type"] == "run.failed"
    assert body["run"]["error"] == {"type": "ValueError", "message": "no stock"}


async def test_a_stand_alone_job_that_fails_for_good_is_delivered_with_its_error(
    engine: QueueEngine, hooks: WebhookEngine, receiver: Receiver
) -> None:
    await hooks.create(receiver.url, ["job.failed"])
    job = await engine.enqueue("charge", {"order": 7}, max_attempts=1)
    [claimed] = await engine.claim("m1", ["charge"], 1)
    await engine.fail(
        job.id, claimed.token, ErrorInfo(type="Declined", message="card"), machine="m1"
    )

    await deliver(Orchestrator(engine))

    [body] = [r.json() for r in receiver.received]
    assert body["type"] == "job.failed"
    assert body["job"]["id"] == job.id and body["job"]["function"] == "charge"
    assert body["job"]["status"] == "dead" and body["job"]["attempt"] == 1
    assert body["job"]["error"] == {"type": "Declined", "message": "card"}
    assert body["links"]["dashboard"] == f"https://tether.example.com/dashboard/#/jobs/{job.id}"


async def test_a_job_with_attempts_left_is_no_job_failed_event(
    engine: QueueEngine, hooks: WebhookEngine, receiver: Receiver, redis: Redis
) -> None:
    await hooks.create(receiver.url, ["job.failed"])
    job = await engine.enqueue("charge", None, max_attempts=2)
    [claimed] = await engine.claim("m1", ["charge"], 1)
    await engine.fail(job.id, claimed.token, ErrorInfo(type="E", message="m"), machine="m1")

    assert await redis.zcard(engine.keys.partition(0).hook_due) == 0


async def test_a_runs_job_failing_for_good_is_left_to_the_runs_own_events(
    engine: QueueEngine, runs: RunEngine, hooks: WebhookEngine, redis: Redis
) -> None:
    await hooks.create("https://a.example.com/", ["job.failed"])
    await running(engine, runs, "r1")  # its activation job: attempt 1, leased to m1
    [act_id] = [j async for j in redis.scan_iter(match=engine.keys.partition(0).job("r1:*"))]
    job_id = act_id.rsplit("job:", 1)[1]
    token = await redis.hget(act_id, "token")
    await redis.hset(act_id, "max_attempts", 1)  # type: ignore[misc]
    await engine.fail(job_id, token, ErrorInfo(type="E", message="m"), machine="m1")

    assert await redis.zcard(engine.keys.partition(0).hook_due) == 0


async def test_an_event_no_webhook_asked_for_is_not_recorded(
    engine: QueueEngine, runs: RunEngine, hooks: WebhookEngine, receiver: Receiver, redis: Redis
) -> None:
    await hooks.create(receiver.url, ["run.failed"])
    await completed(engine, runs, "r1")

    await deliver(Orchestrator(engine))

    assert receiver.received == []
    assert await redis.zcard(engine.keys.partition(0).hook_due) == 0


async def test_a_namespace_without_webhooks_writes_no_delivery_keys(
    engine: QueueEngine, runs: RunEngine, redis: Redis, keys: Keys
) -> None:
    await awaiting_approval(engine, runs, "r1")
    await runs.cancel("r1")

    found = [k async for k in redis.scan_iter(match=f"{{{keys.prefix}:*}}:hook*")]

    assert found == []


async def test_a_delivery_answered_500_is_retried_with_the_same_body_and_then_delivered(
    engine: QueueEngine, runs: RunEngine, hooks: WebhookEngine, receiver: Receiver
) -> None:
    hook = await hooks.create(receiver.url)
    receiver.answers = [500]
    await completed(engine, runs, "r1")

    await deliver(Orchestrator(engine))

    first, second = receiver.received
    assert first.body == second.body
    assert first.headers["tether-delivery"] == second.headers["tether-delivery"]
    [d] = await hooks.deliveries(hook.id)
    assert d.state is DeliveryState.DELIVERED
    assert (d.attempts, d.last_code) == (2, 200)


async def test_a_dead_endpoint_is_given_up_after_the_last_attempt_and_says_so(
    engine: QueueEngine,
    runs: RunEngine,
    hooks: WebhookEngine,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.stop()  # nothing listens there any more: every attempt is refused
    hook = await hooks.create(receiver.url)
    await completed(engine, runs, "r1")

    await deliver(Orchestrator(engine))

    [d] = await hooks.deliveries(hook.id)
    assert d.state is DeliveryState.FAILED
    assert d.attempts == 3 and d.next_at is None
    assert "ConnectError" in d.last_error
    assert "gave up on delivery" in caplog.text


async def test_retries_wait_longer_each_time_up_to_the_cap(
    engine: QueueEngine, config: QueueConfig
) -> None:
    passes = WebhookPasses(
        QueueEngine(
            engine.redis,
            dataclasses.replace(config, webhook_backoff_ms=1000, webhook_backoff_max_ms=5000),
        )
    )

    waits = [passes.backoff_ms(n) for n in (1, 2, 3, 10)]

    assert 500 <= waits[0] <= 1000 and 1000 <= waits[1] <= 2000
    assert 2000 <= waits[2] <= 4000 and 2500 <= waits[3] <= 5000


async def test_a_deleted_webhooks_pending_delivery_is_dropped_not_sent(
    engine: QueueEngine, runs: RunEngine, hooks: WebhookEngine, receiver: Receiver, redis: Redis
) -> None:
    hook = await hooks.create(receiver.url)
    await completed(engine, runs, "r1")
    await hooks.delete(hook.id)

    await deliver(Orchestrator(engine))

    assert receiver.received == []
    pk = engine.keys.partition(0)
    [key] = [k async for k in redis.scan_iter(match=pk.hook_delivery("*"))]
    assert await redis.hget(key, "state") == "dropped"
    assert await redis.ttl(key) > 0  # gone after the retention
    assert not await redis.exists(pk.hook_log(hook.id), pk.hook(hook.id))


async def test_a_slow_receiver_does_not_hold_up_the_orchestrators_pass(
    engine: QueueEngine, runs: RunEngine, hooks: WebhookEngine
) -> None:
    # A listening socket that never answers: the POST waits for its timeout.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    await hooks.create(f"http://127.0.0.1:{port}/slow")
    await completed(engine, runs, "r1")
    orch = Orchestrator(engine)

    done = await asyncio.wait_for(orch.tick(), timeout=1.0)

    assert done["webhooks"] == 1 and len(orch.webhooks.in_flight) == 1
    for task in orch.webhooks.in_flight:
        task.cancel()
    server.close()


# -- once, however many orchestrators -------------------------------------------------------


async def test_two_orchestrators_deliver_each_event_once(
    engine: QueueEngine,
    runs: RunEngine,
    hooks: WebhookEngine,
    receiver: Receiver,
    redis_url: str,
    config: QueueConfig,
) -> None:
    await hooks.create(receiver.url, ["run.cancelled"])
    for i in range(20):
        await runs.start("w", None, run_id=f"r{i}", version=1)
        await runs.cancel(f"r{i}")
    other = redis_client(redis_url, decode_responses=True)  # a cluster's URL too
    # A POST slower than its timeout is retried, and so reaches the receiver twice by
    # design (at least once): a long timeout keeps a loaded machine's slowness out of it.
    patient = dataclasses.replace(config, webhook_timeout_ms=60_000)
    first = Orchestrator(QueueEngine(engine.redis, patient))
    second = Orchestrator(QueueEngine(other, patient))

    # Ticks until all is delivered (a deadline, not a count of ticks: an attempt that
    # failed on a loaded machine is retried after its backoff, and that is still once).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        await asyncio.gather(first.tick(), second.tick())
        if len(receiver.received) >= 20 and await _settled(first):
            break
        await asyncio.sleep(0.01)
    await asyncio.gather(first.webhooks.drain(), second.webhooks.drain())
    await close_client(other)

    ids = [r.headers["tether-delivery"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == 20


async def test_a_claim_whose_lease_ran_out_is_claimed_again_and_the_stale_one_changes_nothing(
    engine: QueueEngine, runs: RunEngine, hooks: WebhookEngine, receiver: Receiver, redis: Redis
) -> None:
    await hooks.create(receiver.url)
    await completed(engine, runs, "r1")
    pk = engine.keys.partition(0)
    [stale] = await hooks.claim(pk, 10, lease_ms=1)
    await asyncio.sleep(0.01)

    [fresh] = await hooks.claim(pk, 10, lease_ms=60_000)

    assert fresh.delivery.id == stale.delivery.id and fresh.token != stale.token
    assert not await hooks.finish(stale, DeliveryState.DELIVERED, code=200)
    assert await hooks.finish(fresh, DeliveryState.DELIVERED, code=200)
    assert await hooks.claim(pk, 10, lease_ms=60_000) == []


async def test_events_of_every_partition_reach_the_webhook(
    redis: Redis, keys: Keys, receiver: Receiver
) -> None:
    config = QueueConfig(keys=dataclasses.replace(keys, partitions=4), webhook_backoff_ms=10)
    engine, runs = QueueEngine(redis, config), RunEngine(redis, config)
    hook = await WebhookEngine(redis, config).create(receiver.url, ["run.cancelled"])
    ids = [f"run{i}" for i in range(12)]
    assert len({config.keys.partition_of(i) for i in ids}) > 1
    for run_id in ids:
        await runs.start("w", None, run_id=run_id, version=1)
        await runs.cancel(run_id)

    await deliver(Orchestrator(engine))

    assert sorted(r.json()["run"]["id"] for r in receiver.received) == sorted(ids)
    assert len(await WebhookEngine(redis, config).deliveries(hook.id)) == 12


# -- managing webhooks ----------------------------------------------------------------


async def test_a_webhook_is_listed_and_gone_once_deleted(hooks: WebhookEngine) -> None:
    hook = await hooks.create("https://chat.example.com/in", ["run.failed"], secret="s" * 20)

    assert [h.id for h in await hooks.list_webhooks()] == [hook.id]
    assert hook.secret == "s" * 20 and hook.events == ("run.failed",)
    await hooks.delete(hook.id)
    assert await hooks.list_webhooks() == []
    with pytest.raises(NotFound):
        await hooks.get(hook.id)


async def test_a_made_up_secret_is_long_and_different_each_time(hooks: WebhookEngine) -> None:
    a = await hooks.create("https://a.example.com/")
    b = await hooks.create("https://a.example.com/")

    assert a.secret != b.secret and len(a.secret) >= 40


async def test_a_namespace_holds_a_bounded_number_of_webhooks(hooks: WebhookEngine) -> None:
    for _ in range(MAX_WEBHOOKS_PER_NAMESPACE):
        await hooks.create("https://a.example.com/")

    with pytest.raises(RegistryFull):
        await hooks.create("https://a.example.com/")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "javascript:alert(1)",
        "http://",
        "https://user:pass@example.com/",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "https://example.com/" + "a" * MAX_WEBHOOK_URL_LENGTH,
        "",
    ],
)
def test_a_webhook_url_that_is_not_plain_http_is_refused(url: str) -> None:
    with pytest.raises(ValidationFailed):
        check_webhook_url(url)


def test_with_an_allow_list_only_its_hosts_are_accepted() -> None:
    allow = ("hooks.slack.com", ".example.com")

    assert check_webhook_url("https://hooks.slack.com/services/x", allow)
    assert check_webhook_url("https://chat.example.com/x", allow)
    for url in ("http://127.0.0.1:6379/", "http://169.254.169.254/latest", "https://example.org"):
        with pytest.raises(ValidationFailed):
            check_webhook_url(url, allow)


async def test_an_unknown_event_name_is_refused(hooks: WebhookEngine) -> None:
    with pytest.raises(ValidationFailed):
        await hooks.create("https://a.example.com/", ["run.exploded"])


async def test_a_short_given_secret_is_refused(hooks: WebhookEngine) -> None:
    with pytest.raises(ValidationFailed):
        await hooks.create("https://a.example.com/", secret="short")


# -- signatures -----------------------------------------------------------------------


def test_a_signature_over_another_body_is_refused() -> None:
    header = sign("secret-secret-secret", b'{"a":1}', 1_800_000_000)

    with pytest.raises(SignatureError):
        verify_signature("secret-secret-secret", header, b'{"a":2}', now=1_800_000_000)


def test_an_old_signature_is_refused_as_a_replay() -> None:
    header = sign("secret-secret-secret", b"{}", 1_800_000_000)

    assert verify_signature("secret-secret-secret", header, b"{}", now=1_800_000_100)
    with pytest.raises(SignatureError):
        verify_signature("secret-secret-secret", header, b"{}", now=1_800_001_000)


def test_a_signature_with_another_secret_is_refused() -> None:
    header = sign("secret-secret-secret", b"{}", 1_800_000_000)

    with pytest.raises(SignatureError):
        verify_signature("another-secret-here", header, b"{}", now=1_800_000_000)


# -- the transition table ---------------------------------------------------------------


def test_every_webhook_script_is_in_the_tables() -> None:
    in_table = {s for scripts in DELIVERY_TRANSITIONS.values() for s in scripts}

    assert {n for n in SCRIPT_NAMES if "deliver" in n or "webhook" in n} == (
        (in_table - HOOK_EVENT_SCRIPTS) | WEBHOOK_SCRIPTS
    )


@pytest.mark.parametrize("script", sorted(HOOK_EVENT_SCRIPTS))
def test_every_script_that_ends_or_parks_a_run_records_its_events(script: str) -> None:
    assert "hook_event(p, runId, status, now)" in script_source(script)


async def test_lua_hook_key_helpers_match_the_python_key_builder(redis: Redis, keys: Keys) -> None:
    pk = keys.partition(0)
    source = (LUA_DIR / "includes" / "hook_keys.lua").read_text() + (
        "\nreturn {hooks_key(ARGV[1]), hook_delivery_key(ARGV[1], 'd'),"
        " hook_due_key(ARGV[1]), hook_log_key(ARGV[1], 'h')}"
    )

    built = await redis.eval(source, 0, pk.prefix)  # type: ignore[misc]

    assert built == [pk.hooks, pk.hook_delivery("d"), pk.hook_due, pk.hook_log("h")]


async def test_a_receiver_that_never_answers_is_a_failed_attempt_after_the_timeout(
    redis: Redis, config: QueueConfig, runs: RunEngine
) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    quick = dataclasses.replace(config, webhook_timeout_ms=200)
    engine = QueueEngine(redis, quick)
    hook = await WebhookEngine(redis, quick).create(f"http://127.0.0.1:{port}/slow")
    await completed(engine, runs, "r1")
    orch = Orchestrator(engine)

    await orch.tick()
    await asyncio.wait_for(orch.webhooks.drain(), timeout=5)
    server.close()

    [d] = await WebhookEngine(redis, quick).deliveries(hook.id)
    assert d.state is DeliveryState.RETRYING and d.last_code is None
    assert "Timeout" in d.last_error or "no answer" in d.last_error
