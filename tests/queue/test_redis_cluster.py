"""Redis Cluster: a ``redis+cluster://`` URL, one round trip per node, scripts on every
node, slot moves, and notifications from every shard.

These tests start a cluster of their own (3 primaries on loopback, ~2 s), so they run in
every suite, not only in ``make test-cluster``."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import SSLConnection

from tether.api.notify import Notifier
from tether.queue import wire
from tether.queue.config import QueueConfig
from tether.queue.engine import EnqueueRequest, QueueEngine
from tether.queue.keys import Keys
from tether.queue.redis_py import (
    BoundedCluster,
    close_client,
    cluster_nodes,
    pooled_client,
    redis_client,
)
from tether.redis_server import RedisCluster as ClusterProcesses
from tether.redis_server import ServerBinaryNotFound, find_server_binary

PARTITIONS = 12


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcesses]:
    try:
        find_server_binary()
    except ServerBinaryNotFound:
        pytest.skip("no Redis server binary on this machine")
    processes = ClusterProcesses(tmp_path_factory.mktemp("own-cluster"), masters=3).start()
    yield processes
    processes.stop()


@pytest.fixture
async def client(cluster: ClusterProcesses) -> AsyncIterator[RedisCluster]:
    c = redis_client(cluster.url + "?protocol=3", decode_responses=True)
    assert isinstance(c, RedisCluster)
    yield c
    await c.aclose()


@pytest.fixture
def keys(request: pytest.FixtureRequest) -> Keys:
    return Keys(prefix=f"c{abs(hash(request.node.name)) % 10**8}", partitions=PARTITIONS)


@pytest.fixture
def engine(client: RedisCluster, keys: Keys) -> QueueEngine:
    return QueueEngine(client, QueueConfig(keys=keys))


def node_of(client: RedisCluster, key: str) -> ClusterNode:
    return client.nodes_manager.get_node_from_slot(client.keyslot(key))


# -- the URL -----------------------------------------------------------------------------


def test_a_cluster_url_names_every_node_and_keeps_credentials_and_options() -> None:
    first, nodes = cluster_nodes("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001/0?x=1")
    assert first == "redis://u:p@10.0.0.1:7000/0?x=1"
    assert nodes == [("10.0.0.1", 7000), ("10.0.0.2", 7001)]


def test_a_cluster_node_without_a_port_is_refused() -> None:
    with pytest.raises(ValueError, match="host:port"):
        cluster_nodes("redis+cluster://127.0.0.1:7000,127.0.0.2")


def test_a_rediss_cluster_url_connects_every_node_with_tls() -> None:
    c = redis_client("rediss+cluster://127.0.0.1:7000,127.0.0.1:7001")
    assert isinstance(c, RedisCluster)
    startup = list(c.nodes_manager.startup_nodes.values())
    assert [n.port for n in startup] == [7000, 7001]
    assert all(n.connection_class is SSLConnection for n in startup)


async def test_the_fixture_gives_every_slot_to_one_of_three_primaries(
    client: RedisCluster,
) -> None:
    info = await client.cluster_info()
    assert (info["cluster_state"], int(info["cluster_slots_assigned"])) == ("ok", 16384)
    assert len(client.get_primaries()) == 3


async def test_a_cluster_client_speaks_resp2_even_when_the_url_asks_for_resp3(
    client: RedisCluster,
) -> None:
    for node in client.get_primaries() or [client.get_default_node()]:
        info = await client.client_info(target_nodes=node)  # type: ignore[call-arg]
        assert str(info["resp"]) == "2"
    await client.initialize()
    assert all(n.connection_kwargs["protocol"] == 2 for n in client.get_nodes())


async def test_a_burst_of_commands_on_a_new_client_goes_to_each_key_s_own_node(
    cluster: ClusterProcesses,
) -> None:
    # redis-py routes a command issued before its slot table is loaded to the default
    # node: every one came back MOVED, and every fifth MOVED closed the client.
    fresh = redis_client(cluster.url, decode_responses=True)
    assert isinstance(fresh, RedisCluster)
    try:
        script = fresh.register_script("return redis.call('INCR', KEYS[1])")
        keys = [f"{{burst{i}}}:n" for i in range(30)]
        replies = await asyncio.gather(*(script(keys=[k]) for k in keys))
        assert replies == [1] * 30
        assert fresh.reinitialize_counter == 0  # redis-py's count of MOVED replies
    finally:
        await fresh.aclose()


async def test_a_burst_of_requests_on_a_new_bounded_client_all_succeed(
    cluster: ClusterProcesses,
) -> None:
    # The API's client: what was a run of 503s ("Connection closed by server").
    bounded = pooled_client(cluster.url, max_connections=8, timeout=5, decode_responses=True)
    try:
        commands = [("INCR", f"{{b{i}}}:n") for i in range(12)]
        replies = await asyncio.gather(
            *(bounded.incr(f"{{b{i}}}:n") for i in range(40)),
            *(wire.pipelined(bounded, commands) for _ in range(10)),
        )
        assert all(not isinstance(r, Exception) for r in replies)
    finally:
        await close_client(bounded)


async def test_a_task_cancelled_as_it_takes_a_permit_is_cancelled(
    cluster: ClusterProcesses,
) -> None:
    # asyncio.wait_for on Python 3.11 dropped a cancellation that came just as the
    # permit was granted: the API's liveness task then never ended, nor its shutdown.
    bounded = pooled_client(cluster.url, max_connections=2, timeout=5)
    assert isinstance(bounded, BoundedCluster)
    try:
        for turns in range(6):

            async def hold() -> None:
                async with bounded.permit():
                    await asyncio.sleep(30)

            task = asyncio.create_task(hold())
            for _ in range(turns):
                await asyncio.sleep(0)
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=2)
            assert done == {task}, f"cancelled after {turns} turns, the task went on"
            assert task.cancelled()
    finally:
        await close_client(bounded)


# -- batches -----------------------------------------------------------------------------


async def test_a_batch_across_partitions_costs_one_round_trip_per_node(
    client: RedisCluster, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    trips: Counter[str] = Counter()
    send = wire._send

    async def counted(node: ClusterNode, *args: Any) -> list[Any]:
        trips[node.name] += 1
        return await send(node, *args)

    monkeypatch.setattr(wire, "_send", counted)
    await client.initialize()
    commands = [("SET", pk.prefix + "x", i) for i, pk in enumerate(keys.all_partitions())]
    assert await wire.pipelined(client, commands) == ["OK"] * PARTITIONS
    served_by = {node_of(client, pk.prefix + "x").name for pk in keys.all_partitions()}
    assert len(served_by) == 3  # the partitions do spread over the three primaries
    assert trips == Counter({name: 1 for name in served_by})


async def test_replies_come_back_in_the_order_of_the_commands(client: RedisCluster) -> None:
    commands = [("INCRBY", f"{{order{i % 7}}}:n", i) for i in range(40)]
    replies = await wire.pipelined(client, commands)
    totals: Counter[int] = Counter()
    for i, reply in enumerate(replies):
        totals[i % 7] += i
        assert reply == totals[i % 7]


async def test_a_moved_reply_refreshes_the_slot_table_and_is_sent_again(
    client: RedisCluster,
) -> None:
    await client.initialize()
    key = "{moved}:k"
    slot = client.keyslot(key)
    right = node_of(client, key)
    wrong = next(n for n in client.get_primaries() if n.name != right.name)
    client.nodes_manager.slots_cache[slot] = [wrong]  # as if the slot had moved
    assert await wire.pipelined(client, [("SET", key, "v"), ("GET", key)]) == ["OK", "v"]
    assert node_of(client, key).name == right.name


async def test_scripts_are_loaded_again_on_every_node_after_a_script_flush(
    client: RedisCluster, engine: QueueEngine
) -> None:
    await engine.enqueue("f")  # every script known everywhere
    await client.script_flush()  # on every primary, as after a failover to a fresh node
    jobs = await engine.enqueue_many([EnqueueRequest("f") for _ in range(30)])
    assert len({node_of(client, engine.keys.for_id(j.id).prefix).name for j in jobs}) == 3
    assert all(j.created for j in jobs)
    assert all(await client.script_exists(engine._scripts["enqueue"].sha))


# -- notifications -----------------------------------------------------------------------


async def test_a_notifier_hears_jobs_made_ready_on_every_node(
    cluster: ClusterProcesses, client: RedisCluster, engine: QueueEngine, keys: Keys
) -> None:
    # One subscription on one node: PUBLISH on a cluster reaches every node's subscribers.
    subscriber = redis_client(cluster.url, decode_responses=True)
    notifier = Notifier(subscriber, client, keys, recheck_interval=3600)
    await notifier.start()
    try:
        assert await notifier.wait_connected(5.0)
        jobs = await engine.enqueue_many([EnqueueRequest("f") for _ in range(40)])
        partitions = {keys.partition_of(j.id) for j in jobs}
        assert len({node_of(client, keys.partition(p).prefix).name for p in partitions}) == 3
        deadline = asyncio.get_running_loop().time() + 5
        while notifier.messages < len(partitions):
            assert asyncio.get_running_loop().time() < deadline, notifier.messages
            await asyncio.sleep(0.01)
        assert notifier.messages == len(partitions)
    finally:
        await notifier.stop()
        await subscriber.aclose()


# -- claims across partitions ------------------------------------------------------------


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Round trips per node made through ``wire.pipelined``."""
    counted: Counter[str] = Counter()
    send = wire._send

    async def counting(node: ClusterNode, *args: Any) -> list[Any]:
        counted[node.name] += 1
        return await send(node, *args)

    monkeypatch.setattr(wire, "_send", counting)
    return counted


async def test_a_claim_with_nothing_ready_costs_one_round_trip_per_node(
    engine: QueueEngine, client: RedisCluster, trips: Counter[str]
) -> None:
    await engine.heartbeat("m1")
    trips.clear()
    assert await engine.claim("m1", ["f", "g"], 10) == []
    assert sorted(trips.values()) == [1, 1, 1]  # PARTITIONS = 12 partitions, 3 nodes


async def test_a_claim_across_partitions_takes_from_every_node_in_two_round_trips_per_node(
    engine: QueueEngine, client: RedisCluster, trips: Counter[str]
) -> None:
    await engine.heartbeat("m1")
    jobs = await engine.enqueue_many([EnqueueRequest("f") for _ in range(36)])
    await client.script_load(engine._scripts["claim"].script)  # no NOSCRIPT retry counted
    trips.clear()
    claimed = await engine.claim("m1", ["f"], 36)
    assert sorted(j.id for j in claimed) == sorted(j.id for j in jobs)
    assert sorted(trips.values()) == [2, 2, 2]
