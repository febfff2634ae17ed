"""``/v1/webhooks``: where the orchestrator POSTs a namespace's run events (admins only).

Targets are chosen by admins of the namespace, and the orchestrator will POST to them
from inside your network: ``TETHER_WEBHOOK_ALLOW_HOSTS`` limits the hosts they may name
(docs/webhooks.md, docs/security.md). The secret that signs deliveries is in the answer
to the POST only; it is never listed.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, post
from litestar.datastructures import State
from litestar.di import Provide
from litestar.params import Parameter
from litestar.types import Scope

from tether.api.auth import SCOPE_SERVICES, principal_of
from tether.api.error_handlers import change_error_responses, error_responses
from tether.api.params import WebhookId
from tether.api.services import Services
from tether.protocol import (
    DeliveryList,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookDeleted,
    WebhookList,
    WebhookOut,
    ms_to_datetime,
)
from tether.queue.webhooks import Delivery, Webhook, WebhookEngine


def provide_webhooks(state: State, scope: Scope) -> WebhookEngine:
    """One per app and namespace, on that namespace's pool and keys (built at first use)."""
    services: Services = scope[SCOPE_SERVICES]  # type: ignore[literal-required]
    by_namespace: dict[str, WebhookEngine] | None = state.get("webhooks")
    if by_namespace is None:
        by_namespace = state.webhooks = {}
    hooks = by_namespace.get(services.namespace)
    if hooks is None:
        engine = services.engine
        hooks = by_namespace[services.namespace] = WebhookEngine(engine.redis, engine.config)
    return hooks


def webhook_out(w: Webhook) -> dict[str, Any]:
    return {
        "id": w.id,
        "url": w.url,
        "events": list(w.events),
        "description": w.description,
        "created_by": w.created_by,
        "created_at": ms_to_datetime(w.created_at),
    }


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        event_id=d.event_id,
        event=d.event,
        run=d.run or None,
        job=d.job or None,
        state=d.state.value,
        attempts=d.attempts,
        last_status_code=d.last_code,
        last_error=d.last_error,
        next_try_at=ms_to_datetime(d.next_at),
        created_at=ms_to_datetime(d.created_at),
        finished_at=ms_to_datetime(d.finished_at),
    )


class WebhooksController(Controller):
    path = "/v1/webhooks"
    tags = ["webhooks"]
    dependencies = {"hooks": Provide(provide_webhooks, sync_to_thread=False)}

    @post(
        "/",
        operation_id="createWebhook",
        responses=change_error_responses(409),
        status_code=201,
        summary="Create a webhook; the answer is the only time its secret is shown",
    )
    async def create_webhook(
        self, data: WebhookCreate, hooks: WebhookEngine, request: Request[Any, Any, Any]
    ) -> WebhookCreated:
        hook = await hooks.create(
            data.url,
            list(data.events),
            secret=data.secret,
            description=data.description,
            created_by=principal_of(request).name,
        )
        return WebhookCreated(secret=hook.secret, **webhook_out(hook))

    @get("/", operation_id="listWebhooks", responses=error_responses(), summary="Webhooks")
    async def list_webhooks(self, hooks: WebhookEngine) -> WebhookList:
        return WebhookList(
            webhooks=[WebhookOut(**webhook_out(w)) for w in await hooks.list_webhooks()]
        )

    @get(
        "/{webhook_id:str}",
        operation_id="getWebhook",
        responses=error_responses(404),
        summary="A webhook (without its secret)",
    )
    async def get_webhook(self, webhook_id: WebhookId, hooks: WebhookEngine) -> WebhookOut:
        return WebhookOut(**webhook_out(await hooks.get(webhook_id)))

    @delete(
        "/{webhook_id:str}",
        operation_id="deleteWebhook",
        status_code=200,
        responses=change_error_responses(404),
        summary="Delete a webhook (its deliveries not yet made are dropped)",
    )
    async def delete_webhook(self, webhook_id: WebhookId, hooks: WebhookEngine) -> WebhookDeleted:
        await hooks.delete(webhook_id)
        return WebhookDeleted(id=webhook_id, deleted=True)

    @get(
        "/{webhook_id:str}/deliveries",
        operation_id="listWebhookDeliveries",
        responses=error_responses(404),
        summary="A webhook's newest deliveries, with their attempts, answers and next try",
    )
    async def list_deliveries(
        self,
        webhook_id: WebhookId,
        hooks: WebhookEngine,
        limit: int = Parameter(default=50, ge=1, le=200),
    ) -> DeliveryList:
        found = await hooks.deliveries(webhook_id, limit)
        return DeliveryList(deliveries=[delivery_out(d) for d in found])
