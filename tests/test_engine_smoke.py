from tether.queue.engine import QueueEngine
from tether.queue.records import ErrorInfo


async def test_smoke(engine: QueueEngine) -> None:
    e = await engine.enqueue("add", {"a": 1})
    assert e.created
    again = await engine.enqueue("add", {"a": 1}, job_id=e.id)
    assert not again.created
    jobs = await engine.claim("m1", ["add"], 10)
    assert [j.id for j in jobs] == [e.id]
    hb = await engine.heartbeat("m1", {"functions": ["add"]}, held=[e.id, "nope"])
    assert hb.extended == 1 and hb.lost == ["nope"]
    await engine.complete(e.id, jobs[0].token, {"sum": 1})
    rec = await engine.get_job(e.id)
    assert rec.status == "completed" and rec.result == {"sum": 1}
    e2 = await engine.enqueue("add", 2, max_attempts=2)
    j = (await engine.claim("m1", ["add"], 10))[0]
    assert await engine.fail(e2.id, j.token, ErrorInfo(type="X", message="y")) == "delayed"
    print(await engine.timeline(e.id))
    print(await engine.machines())
    assert await engine.reap() == []
    assert await engine.machine_dead("m1") == []
    print(await engine.list_jobs())
