"""API keys and machine bindings in Redis (the key names come from ``keys.py``).

A key is ``tk_`` followed by 43 characters of URL-safe base64: 256 random bits from
``secrets``. Redis holds only its SHA-256 (hex) as the name of the key's record, so a
copy of the database yields no usable key. SHA-256 without salt or stretching is right
here: the input is 256 random bits, not a password, so there is nothing to brute-force.

Every change is one Lua script (``create_api_key``, ``revoke_api_key``,
``touch_api_key``, ``bind_machine``); reads are single commands.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any, cast

import orjson

from tether.errors import Conflict, NotFound
from tether.limits import ID_REGEX_WITH_LENGTH, ID_RULE
from tether.protocol import ROLES
from tether.queue.keys import Keys, PartitionKeys, check_namespace
from tether.queue.redis_errors import redis_errors
from tether.queue.redis_py import Client
from tether.queue.scripts import register_scripts

KEY_PREFIX = "tk_"
# A machine id not heard from for this long is freed for another key to use.
MACHINE_BINDING_TTL_MS = 24 * 3600 * 1000


def new_key() -> str:
    """A fresh API key: the prefix and 256 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest_of(key: str) -> str:
    """The SHA-256 (hex) under which a key's record is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def check_name(name: str) -> str:
    """A key's name follows the id rule (it appears in paths: DELETE /v1/keys/{name})."""
    if not re.fullmatch(ID_REGEX_WITH_LENGTH, name):
        raise ValueError(f"bad key name {name!r}: {ID_RULE}")
    return name


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What Redis knows of a key (never the key itself)."""

    name: str
    role: str
    namespace: str
    functions: tuple[str, ...] | None  # globs a machine key may register; None: any
    created_ms: int
    last_used_ms: int | None
    digest: str

    @classmethod
    def from_hash(cls, digest: str, row: dict[str, str]) -> ApiKey:
        functions = row.get("functions") or ""
        return cls(
            name=row["name"],
            role=row["role"],
            namespace=row["namespace"],
            functions=tuple(orjson.loads(functions)) if functions else None,
            created_ms=int(row.get("created_ms") or 0),
            last_used_ms=int(row["last_used_ms"]) if row.get("last_used_ms") else None,
            digest=digest,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "namespace": self.namespace,
            "functions": list(self.functions) if self.functions is not None else None,
            "created_ms": self.created_ms,
            "last_used_ms": self.last_used_ms,
        }


class KeyStore:
    """Create, list, revoke and look up API keys; bind machine ids to keys."""

    def __init__(self, redis: Client, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._scripts = register_scripts(redis)

    async def create(
        self,
        name: str,
        role: str,
        namespace: str = "default",
        functions: list[str] | None = None,
    ) -> tuple[str, ApiKey]:
        """A new key (returned once, here) and its record. Conflict if the name is taken."""
        check_name(name)
        check_namespace(namespace)
        if role not in ROLES:
            raise ValueError(f"bad role {role!r}: one of {', '.join(ROLES)}")
        if functions is not None and role != "machine":
            raise ValueError("only a machine key can be limited to functions")
        key = new_key()
        digest = digest_of(key)
        blob = orjson.dumps(functions).decode() if functions is not None else ""
        with redis_errors():
            code, created = await self._scripts["create_api_key"](
                [self.keys.auth_names, self.keys.auth_key(digest), self.keys.namespaces],
                [name, digest, role, namespace, blob],
            )
        if int(code) == -6:
            raise Conflict(f"a key named {name!r} exists already", details={"name": name})
        record = ApiKey(
            name=name,
            role=role,
            namespace=namespace,
            functions=tuple(functions) if functions is not None else None,
            created_ms=int(created),
            last_used_ms=None,
            digest=digest,
        )
        return key, record

    async def all(self) -> list[ApiKey]:
        """Every key, by name."""
        with redis_errors():
            names = cast(dict[str, str], await self.redis.hgetall(self.keys.auth_names))
            async with self.redis.pipeline(transaction=False) as pipe:
                for digest in names.values():
                    pipe.hgetall(self.keys.auth_key(digest))
                rows = await pipe.execute()
        return sorted(
            (ApiKey.from_hash(d, r) for d, r in zip(names.values(), rows, strict=True) if r),
            key=lambda k: k.name,
        )

    async def revoke(self, name: str) -> None:
        """Forget the key named ``name``; NotFound if there is none."""
        with redis_errors():
            digest = cast(str | None, await self.redis.hget(self.keys.auth_names, name))
            done = 0
            if digest is not None:
                done = await self._scripts["revoke_api_key"](
                    [self.keys.auth_names, self.keys.auth_key(digest)], [name, digest]
                )
        if not done:
            raise NotFound(f"no key named {name!r}", details={"name": name})

    async def lookup(self, key: str) -> ApiKey | None:
        """The record of the key presented, or None if no such key exists (or was revoked)."""
        digest = digest_of(key)
        with redis_errors():
            row = cast(dict[str, str], await self.redis.hgetall(self.keys.auth_key(digest)))
        if not row or "name" not in row:
            return None
        record = ApiKey.from_hash(digest, row)
        # The record was found by the digest; compare it once more in constant time so
        # no code path ever compares key material with ``==``.
        if not hmac.compare_digest(record.digest, digest):
            return None
        return record

    async def touch(self, digest: str, now_ms: int) -> None:
        with redis_errors():
            await self._scripts["touch_api_key"]([self.keys.auth_key(digest)], [now_ms])

    async def any_key(self) -> bool:
        """True if at least one key exists (``tether api`` refuses to start otherwise)."""
        with redis_errors():
            return bool(await self.redis.hlen(self.keys.auth_names))

    async def namespaces(self) -> list[str]:
        """Every namespace a key was made for, and ``default``."""
        with redis_errors():
            found = cast(set[str], await self.redis.smembers(self.keys.namespaces))
        return sorted(found | {"default"})

    async def bind_machine(self, partition: PartitionKeys, machine: str, caller: str) -> str:
        """Bind ``machine`` (in the namespace of ``partition``) to the key ``caller``
        unless another key holds it; returns the name of the key that does."""
        with redis_errors():
            owner = await self._scripts["bind_machine"](
                [partition.machine_owner(machine)], [caller, MACHINE_BINDING_TTL_MS]
            )
        return str(owner)
