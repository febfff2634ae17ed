"""The example worker `make dev` runs: ``tether worker examples.hello:WorkerSettings``.

Try it: ``curl -s -X POST localhost:8000/v1/jobs -H 'content-type: application/json'
-d '{"function": "hello", "input": {"name": "world"}}'``
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Greeting(BaseModel):
    name: str = "world"


async def hello(ctx: dict[str, Any], greeting: Greeting) -> dict[str, str]:
    """Greets, and says which machine ran it."""
    return {"message": f"hello, {greeting.name}!", "machine": ctx["machine_id"]}


class WorkerSettings:
    functions = [hello]
    max_jobs = 10
