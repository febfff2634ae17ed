"""The example worker `make dev` runs: ``tether worker examples.hello:WorkerSettings``.

Every call needs the key `make dev` wrote: ``AUTH="authorization: Bearer $(cat
.tether/admin.key)"``.

Try a job: ``curl -s -X POST localhost:8000/v1/jobs -H 'content-type: application/json'
-H "$AUTH" -d '{"function": "hello", "input": {"name": "world"}}'``

Try a workflow that waits for a person: ``curl -s -X POST localhost:8000/v1/runs -H
'content-type: application/json' -H "$AUTH" -d '{"workflow": "greet", "input": {"name":
"ada"}, "id": "r1"}'``, then ``curl -s -X POST localhost:8000/v1/runs/r1/approvals/send
-H 'content-type: application/json' -H "$AUTH" -d '{"approved": true}'`` (the decider
recorded is the key's name, ``dev-admin``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tether import WorkflowContext, workflow


class Greeting(BaseModel):
    name: str = "world"


async def hello(ctx: dict[str, Any], greeting: Greeting) -> dict[str, str]:
    """Greets, and says which machine ran it."""
    return {"message": f"hello, {greeting.name}!", "machine": ctx["machine_id"]}


@workflow(name="greet", version=1)
async def greet(ctx: WorkflowContext, greeting: Greeting) -> dict[str, Any]:
    """Drafts a greeting, waits for a person to approve it, then sends it."""
    draft = await ctx.call("hello", {"name": greeting.name})
    decision = await ctx.wait_for_approval("send", prompt="Send this greeting?", data=draft)
    if not decision.approved:
        return {"sent": False, "by": decision.by}
    return {"sent": True, "message": draft["message"], "approved_by": decision.by}


class WorkerSettings:
    functions = [hello]
    workflows = [greet]
    max_jobs = 10
