"""Settings, an endpoint's delivery: the event it carries, every attempt (status code,
duration, the start of the answer or the error) and "resend", which queues it again at
once through ``WebhookService.resend``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from orderbridge.errors import NotFound
from orderbridge.ids import FeedPosition, order_public_id
from orderbridge.ui.deps import ContainerDep, OwnerAccess
from orderbridge.ui.rendering import flash, redirect, render, url
from orderbridge.ui.settings_webhooks import BASE, EndpointIdPath

router = APIRouter()

DeliveryIdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]
DELIVERY = BASE + "/{endpoint_id}/deliveries/{delivery_id}"


@router.get(DELIVERY, name="settings_webhook_delivery")
async def delivery_page(
    request: Request,
    endpoint_id: EndpointIdPath,
    delivery_id: DeliveryIdPath,
    access: OwnerAccess,
    container: ContainerDep,
) -> Response:
    async with container.db.reader() as session:
        endpoint = await container.webhooks.get_endpoint(session, access.store_id, endpoint_id)
        delivery, event, attempts = await container.webhooks.get_delivery(
            session, access.store_id, delivery_id
        )
    if delivery.endpoint_id != endpoint.id:
        raise NotFound(f"no delivery {delivery_id}", code="delivery_not_found")
    return render(
        request,
        "settings/delivery.html",
        {
            "nav": "settings",
            "section": "webhooks",
            "endpoint": endpoint,
            "delivery": delivery,
            "event_id": FeedPosition(event.txid, event.pos).event_id(),
            "order_id": order_public_id(delivery.store_id, delivery.order_id)
            if delivery.order_id
            else None,
            "attempts": attempts,
        },
    )


@router.post(DELIVERY + "/resend", name="settings_webhook_resend")
async def resend(
    request: Request,
    endpoint_id: EndpointIdPath,
    delivery_id: DeliveryIdPath,
    access: OwnerAccess,
    container: ContainerDep,
) -> Response:
    async with container.db.transaction() as session:
        delivery, _, _ = await container.webhooks.get_delivery(
            session, access.store_id, delivery_id
        )
        if delivery.endpoint_id != endpoint_id:
            raise NotFound(f"no delivery {delivery_id}", code="delivery_not_found")
        await container.webhooks.resend(session, access.store_id, delivery_id)
    flash(request, f"Delivery {delivery_id} queued to be sent again now.")
    return redirect(
        url(
            request,
            "settings_webhook_delivery",
            store_id=access.store_id,
            endpoint_id=endpoint_id,
            delivery_id=delivery_id,
        )
    )
