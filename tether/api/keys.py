"""``/v1/keys``: API keys, for admins (``tether keys`` does the same straight on Redis).

An admin key of the ``default`` namespace manages every namespace's keys; an admin key
of another namespace sees and manages its own namespace's keys only (403 otherwise).
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post

from tether.api.auth import Principal, principal_of
from tether.api.error_handlers import change_error_responses, error_responses
from tether.api.params import KeyName
from tether.errors import Forbidden, NotFound, ValidationFailed
from tether.protocol import KeyCreate, KeyCreated, KeyList, KeyOut, WhoAmI, ms_to_datetime
from tether.queue.apikeys import ApiKey, KeyStore
from tether.queue.keys import DEFAULT_NAMESPACE


def _out(key: ApiKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "role": key.role,
        "namespace": key.namespace,
        "functions": list(key.functions) if key.functions is not None else None,
        "created_at": ms_to_datetime(key.created_ms),
        "last_used_at": ms_to_datetime(key.last_used_ms),
    }


def _may_manage(principal: Principal, namespace: str) -> bool:
    return principal.namespace in (DEFAULT_NAMESPACE, namespace)


class KeysController(Controller):
    path = "/v1/keys"
    tags = ["keys"]

    @post(
        "/",
        operation_id="createKey",
        responses=change_error_responses(409),
        status_code=201,
        summary="Create an API key; the answer is the only time the key is shown",
    )
    async def create_key(self, data: KeyCreate, request: Request[Any, Any, Any]) -> KeyCreated:
        principal = principal_of(request)
        if not _may_manage(principal, data.namespace):
            raise Forbidden(
                f"a key of namespace {principal.namespace!r} manages only its own namespace",
                details={"namespace": data.namespace},
            )
        store: KeyStore = request.app.state.authenticator.store
        try:
            key, record = await store.create(data.name, data.role, data.namespace, data.functions)
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from exc
        return KeyCreated(key=key, **_out(record))

    @get("/", operation_id="listKeys", responses=error_responses(), summary="API keys")
    async def list_keys(self, request: Request[Any, Any, Any]) -> KeyList:
        principal = principal_of(request)
        store: KeyStore = request.app.state.authenticator.store
        return KeyList(
            keys=[
                KeyOut(**_out(k)) for k in await store.all() if _may_manage(principal, k.namespace)
            ]
        )

    @post(
        "/{name:str}/revoke",
        operation_id="revokeKey",
        responses=change_error_responses(404),
        status_code=200,
        summary="Revoke an API key (refused everywhere within 1 s)",
    )
    async def revoke_key(self, name: KeyName, request: Request[Any, Any, Any]) -> KeyOut:
        principal = principal_of(request)
        store: KeyStore = request.app.state.authenticator.store
        found = next((k for k in await store.all() if k.name == name), None)
        if found is None or not _may_manage(principal, found.namespace):
            raise NotFound(f"no key named {name!r}", details={"name": name})
        await store.revoke(name)
        return KeyOut(**_out(found))


@get(
    "/v1/whoami",
    operation_id="whoAmI",
    tags=["keys"],
    responses=error_responses(),
    summary="The calling key: name, role, namespace, permissions",
)
async def whoami(request: Request[Any, Any, Any]) -> WhoAmI:
    principal = principal_of(request)
    return WhoAmI(
        name=principal.name,
        role=principal.role,
        namespace=principal.namespace,
        permissions=sorted(p.value for p in principal.permissions),
    )
