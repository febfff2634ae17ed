"""API keys for tests (importable, unlike conftest): every fixture that starts an API
starts it WITH authentication, and hands its clients and workers keys made here."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from tether.queue.apikeys import KeyStore
from tether.queue.keys import Keys
from tether.queue.redis_py import Client, redis_client


@dataclass(frozen=True)
class TestKeys:
    """The keys of one test's deployment (its key prefix), by role."""

    __test__ = False  # not a test class, whatever its name says

    admin: str
    machine: str
    app: str
    viewer: str
    approver: str

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"authorization": f"Bearer {getattr(self, role)}"}


ROLE_NAMES = ("admin", "machine", "app", "viewer", "approver")


async def create_keys(redis: Client, prefix: str, namespace: str = "default") -> TestKeys:
    """One key per role, named ``test-<role>`` (``<namespace>-<role>`` elsewhere)."""
    store = KeyStore(redis, Keys(prefix=prefix))
    made = {}
    for role in ROLE_NAMES:
        name = f"test-{role}" if namespace == "default" else f"{namespace}-{role}"
        made[role], _ = await store.create(name, role, namespace)
    return TestKeys(**made)


def create_keys_sync(redis_url: str, prefix: str, namespace: str = "default") -> TestKeys:
    """``create_keys`` from synchronous code, even under a running event loop."""
    result: list[TestKeys] = []
    errors: list[BaseException] = []

    async def go() -> None:
        redis = redis_client(redis_url, decode_responses=True)
        try:
            result.append(await create_keys(redis, prefix, namespace))
        finally:
            await redis.aclose()

    def run() -> None:
        try:
            asyncio.run(go())
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]
