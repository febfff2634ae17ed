"""`tether dev`'s keys: made once in the data folder (0600), found again on the next
start, made again when Redis no longer knows them."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from tether.dev_keys import ensure_dev_keys
from tether.queue.apikeys import KeyStore
from tether.queue.keys import Keys


async def test_dev_keys_are_made_once_owner_readable_and_kept(
    tmp_path: Path, redis_url: str, redis: Redis, keys: Keys
) -> None:
    first = await ensure_dev_keys(tmp_path, redis_url, keys)
    again = await ensure_dev_keys(tmp_path, redis_url, keys)

    assert again == first
    for name, key in (("admin.key", first.admin), ("machine.key", first.machine)):
        path = tmp_path / name
        assert path.read_text().strip() == key
        assert path.stat().st_mode & 0o777 == 0o600
    store = KeyStore(redis, keys)
    admin, machine = await store.lookup(first.admin), await store.lookup(first.machine)
    assert admin is not None and (admin.name, admin.role) == ("dev-admin", "admin")
    assert machine is not None and (machine.name, machine.role) == ("dev-machine", "machine")


async def test_a_dev_key_redis_forgot_is_made_again(
    tmp_path: Path, redis_url: str, redis: Redis, keys: Keys
) -> None:
    first = await ensure_dev_keys(tmp_path, redis_url, keys)
    await KeyStore(redis, keys).revoke("dev-admin")

    again = await ensure_dev_keys(tmp_path, redis_url, keys)

    assert again.admin != first.admin and again.machine == first.machine
    assert (tmp_path / "admin.key").read_text().strip() == again.admin
