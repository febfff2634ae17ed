"""The API keys of ``tether dev``: an admin key and a machine key, made on first start and
kept in the data folder (``./.tether/admin.key``, ``machine.key``, mode 0600).

Clients and the CLI started in the same folder find ``admin.key`` there when
``$TETHER_API_KEY`` is unset, workers find ``machine.key`` (``_client_http.resolve_api_key``),
so dev mode stays one command with authentication on.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from tether.errors import NotFound
from tether.queue.apikeys import KeyStore
from tether.queue.keys import Keys
from tether.queue.redis_py import redis_client

ADMIN_FILE = "admin.key"
MACHINE_FILE = "machine.key"


@dataclass(frozen=True)
class DevKeys:
    admin: str
    machine: str


def _write_secret(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only (0600 from the start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)  # an older file may have had looser bits


async def _ensure(store: KeyStore, path: Path, role: str, name: str) -> str:
    if path.exists():
        key = path.read_text().strip()
        if key and await store.lookup(key) is not None:
            return key
    # No file, or a key Redis no longer knows (a wiped data folder): make a new one.
    with contextlib.suppress(NotFound):
        await store.revoke(name)
    key, _ = await store.create(name, role)
    _write_secret(path, key)
    return key


async def ensure_dev_keys(data_dir: Path, redis_url: str, keys: Keys | None = None) -> DevKeys:
    """The dev admin and machine keys: those in ``data_dir`` if Redis knows them, else
    new ones (written there)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    redis = redis_client(redis_url, decode_responses=True)
    try:
        store = KeyStore(redis, keys or Keys(prefix=os.environ.get("TETHER_PREFIX") or "tether"))
        admin = await _ensure(store, data_dir / ADMIN_FILE, "admin", "dev-admin")
        machine = await _ensure(store, data_dir / MACHINE_FILE, "machine", "dev-machine")
    finally:
        await redis.aclose()
    return DevKeys(admin, machine)
