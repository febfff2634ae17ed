"""Authentication and authorization of every request, before its body is read.

``Gate`` runs as the app's ``before_request`` hook, after routing and before the
request's body and parameters are parsed: it finds the route's permission in
``access.ROUTE_ACCESS``, the caller's key in ``Authorization: Bearer <key>``, and puts
the caller (``Principal``) and its namespace's services in the ASGI scope, where the
``services`` dependency takes them from.

Cost on the hot path: a dict lookup of the key text in a cache of verified keys. A key
is re-read from Redis at most every ``KEY_CACHE_TTL`` seconds per process (so a revoked
key stops working within that bound), and its ``last_used`` written at most every
``TOUCH_EVERY_MS`` per process. A machine id's binding to its key is re-checked at most
every ``BINDING_CACHE_TTL`` seconds per process.
"""

from __future__ import annotations

import fnmatch
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from litestar import Request

from tether.api.access import ROLE_PERMISSIONS, ROUTE_ACCESS, Permission
from tether.api.services import Services
from tether.errors import Forbidden, Unauthorized
from tether.queue.apikeys import ApiKey, KeyStore
from tether.queue.engine import check_id
from tether.queue.keys import DEFAULT_NAMESPACE

log = logging.getLogger("tether.api.auth")

KEY_CACHE_TTL = 1.0  # seconds: the bound on how long a revoked key keeps working
KEY_CACHE_MAX = 10_000  # verified keys remembered per process (then the cache restarts)
TOUCH_EVERY_MS = 60_000  # last_used is written at most this often per key and process
BINDING_CACHE_TTL = 60.0  # seconds a verified machine binding is trusted per process

SCOPE_PRINCIPAL = "tether.principal"
SCOPE_SERVICES = "tether.services"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's name, role and namespace."""

    name: str
    role: str
    namespace: str
    functions: tuple[str, ...] | None = None  # globs a machine key may serve; None: any
    permissions: frozenset[Permission] = frozenset()

    @classmethod
    def of(cls, key: ApiKey) -> Principal:
        return cls(
            key.name,
            key.role,
            key.namespace,
            key.functions,
            ROLE_PERMISSIONS.get(key.role, frozenset()),
        )

    def may_serve(self, function: str) -> bool:
        if self.functions is None:
            return True
        return any(fnmatch.fnmatchcase(function, glob) for glob in self.functions)

    def check_functions(self, names: Iterable[str]) -> None:
        """Forbidden unless this key may serve every one of ``names``."""
        if self.functions is None:
            return
        refused = sorted({n for n in names if not self.may_serve(_function_of(n))})
        if refused:
            raise Forbidden(
                f"key {self.name!r} may not serve {', '.join(refused[:5])}",
                details={"functions": refused[:100], "allowed": list(self.functions)},
            )


def _function_of(name: str) -> str:
    """A workflow registers as ``wf:<workflow>@<version>``: its allow-list entry names the
    workflow."""
    if name.startswith("wf:"):
        return name[3:].rpartition("@")[0] or name[3:]
    return name


# Every request without auth (``tether api --no-auth``) acts as this.
ANONYMOUS_ADMIN = Principal(
    "anonymous", "admin", DEFAULT_NAMESPACE, None, ROLE_PERMISSIONS["admin"]
)


class Authenticator:
    """Verifies keys (with a short cache) and machine bindings; one per process."""

    def __init__(self, store: KeyStore, *, enabled: bool = True) -> None:
        self.store = store
        self.enabled = enabled
        self._keys: dict[bytes, tuple[Principal, float]] = {}
        self._touched: dict[str, int] = {}  # digest -> when last_used was last written
        self._bindings: dict[tuple[str, str], tuple[str, float]] = {}

    async def principal(self, header: bytes | None) -> Principal:
        """The caller named by an ``Authorization`` header value; Unauthorized if none."""
        if not self.enabled:
            return ANONYMOUS_ADMIN
        if not header:
            raise Unauthorized(
                "this API needs a key: send 'Authorization: Bearer <key>'",
                details={"scheme": "Bearer"},
            )
        now = time.monotonic()
        cached = self._keys.get(header)
        if cached is not None and cached[1] > now:
            return cached[0]
        scheme, _, token = header.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "the Authorization header must be 'Bearer <key>'", details={"scheme": "Bearer"}
            )
        record = await self.store.lookup(token)
        if record is None:
            self._keys.pop(header, None)
            raise Unauthorized("unknown or revoked API key", details={"scheme": "Bearer"})
        principal = Principal.of(record)
        if len(self._keys) >= KEY_CACHE_MAX:
            self._keys.clear()
        self._keys[header] = (principal, now + KEY_CACHE_TTL)
        await self._touch(record)
        return principal

    async def _touch(self, record: ApiKey) -> None:
        now_ms = int(time.time() * 1000)
        last = max(self._touched.get(record.digest, 0), record.last_used_ms or 0)
        if now_ms - last >= TOUCH_EVERY_MS:
            self._touched[record.digest] = now_ms
            await self.store.touch(record.digest, now_ms)

    async def check_machine(self, services: Services, machine: str, principal: Principal) -> None:
        """Forbidden unless ``machine`` is bound to the caller's key (binding it if free)."""
        if not self.enabled:
            return
        now = time.monotonic()
        slot = (services.namespace, machine)
        cached = self._bindings.get(slot)
        if cached is None or cached[1] <= now:
            check_id(machine, "machine_id")  # before anything is written under that id
            owner = await self.store.bind_machine(
                services.engine.keys.partition(0), machine, principal.name
            )
            if len(self._bindings) >= KEY_CACHE_MAX:
                self._bindings.clear()
            cached = (owner, now + BINDING_CACHE_TTL)
            self._bindings[slot] = cached
        if cached[0] != principal.name:
            raise Forbidden(
                f"machine {machine!r} belongs to another key",
                details={"machine_id": machine},
            )


def _authorization(scope: Any) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value  # type: ignore[no-any-return]
    return None


def permission_of(handler: Any, path: str) -> Permission | None:
    """The permission a route needs; None: refuse to everyone (a route not in the table)."""
    op = handler.operation_id
    if isinstance(op, str):
        return ROUTE_ACCESS.get(op)
    # Litestar's own handlers: the OpenAPI document and CORS preflights.
    if path.startswith("/schema") or "OPTIONS" in handler.http_methods:
        return Permission.PUBLIC
    return None


class Gate:
    """The ``before_request`` hook of one app: who is calling, and may they call this
    route. ``tenants`` and ``authenticator`` are set by the app's lifespan; holding them
    here (not on ``app.state``) keeps the hook to a few dict lookups."""

    def __init__(self) -> None:
        self.tenants: Any = None  # tether.api.tenants.Tenants
        self.authenticator: Authenticator | None = None
        self._permissions: dict[int, Permission | None] = {}  # id(handler) -> permission

    async def __call__(self, request: Request[Any, Any, Any]) -> None:
        scope = request.scope
        handler = scope["route_handler"]
        try:
            permission = self._permissions[id(handler)]
        except KeyError:
            permission = self._permissions[id(handler)] = permission_of(handler, scope["path"])
        tenants = self.tenants
        if permission is Permission.PUBLIC:
            scope[SCOPE_SERVICES] = tenants.default  # type: ignore[literal-required]
            return
        auth = self.authenticator
        assert auth is not None and tenants is not None, "the app's lifespan has not run"
        principal = await auth.principal(_authorization(scope))
        if permission is None or permission not in principal.permissions:
            raise Forbidden(
                f"a key of role {principal.role!r} may not call this route",
                details={
                    "role": principal.role,
                    "needs": permission.value if permission else None,
                },
            )
        services: Services = tenants.get(principal.namespace)
        scope[SCOPE_PRINCIPAL] = principal  # type: ignore[literal-required]
        scope[SCOPE_SERVICES] = services  # type: ignore[literal-required]
        if permission is Permission.MACHINE:
            await auth.check_machine(services, scope["path_params"]["machine_id"], principal)


def principal_of(request: Request[Any, Any, Any]) -> Principal:
    principal = request.scope.get(SCOPE_PRINCIPAL, ANONYMOUS_ADMIN)
    assert isinstance(principal, Principal)
    return principal
