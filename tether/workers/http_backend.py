"""An activation's reports over HTTP: one request per durable write.

    POST /v1/machines/{id}/runs/{run}/begin     token check, input and recorded steps
    POST /v1/machines/{id}/runs/{run}/steps     record one step (before the code goes on)
    POST /v1/machines/{id}/runs/{run}/complete  | /fail | /suspend   how the run goes on

Transient failures (the API or its Redis away) are retried with backoff for as long as
they last: the activation's lease stays alive meanwhile (the worker heartbeats it), and
every write is idempotent by position and token. A refusal (stale token, run finished)
abandons the activation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from tether._client_http import HttpSession, dumps
from tether.protocol import ActivationState, ChildSpec, LeasedJob, Resume, Wait, wait_to_wire
from tether.workers.context import refusals
from tether.workers.transport import retrying

# POST (path, JSON body) -> raw JSON answer.
Poster = Callable[[str, bytes], Awaitable[bytes]]


def session_poster(session: HttpSession) -> Poster:
    """The worker's HTTP session as a Poster."""

    async def post(path: str, body: bytes) -> bytes:
        return await session.request("POST", path, body=orjson.Fragment(body))

    return post


class HttpBackend:
    def __init__(self, post: Poster, machine_id: str, job: LeasedJob) -> None:
        self.post = post
        self.job = job
        self._run_id = job.parent or ""
        self._base = f"/v1/machines/{machine_id}/runs/{self._run_id}"

    @property
    def run_id(self) -> str:
        return self._run_id

    @property
    def job_id(self) -> str:
        return self.job.id

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        body["job"] = self.job.id
        body["token"] = self.job.token
        payload = dumps(body)
        with refusals():
            raw = await retrying(
                lambda: self.post(f"{self._base}/{path}", payload),
                what=f"run {self._run_id} {path}",
            )
        return orjson.loads(raw)

    async def begin(
        self,
        *,
        max_attempts: int,
        timeout_ms: int | None,
        resume: str | None = None,
        positions: Sequence[int] = (),
    ) -> ActivationState:
        body: dict[str, Any] = {"max_attempts": max_attempts, "timeout_ms": timeout_ms}
        if resume is not None:
            body["resume"] = resume
            body["positions"] = list(positions)
        data = await self._post("begin", body)
        return ActivationState(
            run_id=data["run"],
            workflow=data["workflow"],
            version=data["version"],
            input=data["input"],
            steps={int(k): v for k, v in data["steps"].items()},
            failures=data["failures"],
            retries=data["retries"],
            log_mark=data.get("log_mark", -1),
            max_payload_bytes=data.get("max_payload_bytes"),
            delta=bool(data.get("delta", False)),
        )

    async def record_step(
        self, position: int, record: dict[str, Any], logs: list[dict[str, Any]]
    ) -> None:
        await self._post("steps", {"position": position, "record": record, "logs": logs})

    async def complete(self, result: Any, logs: list[dict[str, Any]]) -> str:
        data = await self._post("complete", {"result": result, "logs": logs})
        return str(data["status"])

    async def fail(
        self,
        error: dict[str, Any],
        *,
        resume: Resume | None,
        retryable: bool,
        logs: list[dict[str, Any]],
    ) -> str:
        data = await self._post(
            "fail",
            {
                "error": error,
                "reopen": [] if resume is None else list(resume.reopen),
                "resume_after": None if resume is None else resume.after,
                "retryable": retryable,
                "logs": logs,
            },
        )
        return str(data["status"])

    async def continue_as_new(self, input: Any, logs: list[dict[str, Any]]) -> str:
        data = await self._post("continue", {"input": input, "logs": logs})
        return str(data["status"])

    async def suspend(
        self, wait: Wait, children: Sequence[ChildSpec], logs: list[dict[str, Any]]
    ) -> str:
        body = {
            "wait": wait_to_wire(wait),
            "children": [
                {
                    "position": c.position,
                    "function": c.function,
                    "input": c.input,
                    "max_attempts": c.max_attempts,
                    "timeout_ms": c.timeout_ms,
                    "workflow": c.workflow,
                    "version": c.version,
                }
                for c in children
            ],
            "logs": logs,
        }
        data = await self._post("suspend", body)
        return str(data["status"])
