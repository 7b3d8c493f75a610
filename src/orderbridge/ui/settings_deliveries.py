"""Settings, an endpoint's deliveries: one delivery with the event it carries and every
attempt (status code, duration, the start of the answer or the error); "resend", which
queues it again at once (``WebhookService.resend``); and "send what it missed" after an
outage (``WebhookService.recover_since``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from orderbridge.errors import NotFound
from orderbridge.ids import FeedPosition, order_public_id
from orderbridge.ui.deps import ContainerDep, OwnerAccess
from orderbridge.ui.forms import FormState
from orderbridge.ui.rendering import flash, formats, redirect, render, url
from orderbridge.ui.settings_webhooks import (
    BASE,
    LOCAL_MINUTE,
    EndpointIdPath,
    render_endpoint_page,
)

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


@router.post(BASE + "/{endpoint_id}/recover", name="settings_webhook_recover")
async def recover(
    request: Request, endpoint_id: EndpointIdPath, access: OwnerAccess, container: ContainerDep
) -> Response:
    """Failed deliveries since a moment go out again, and the events the endpoint missed
    meanwhile (while disabled) are queued for it (``WebhookService.recover_since``)."""
    form = FormState.of(await request.form())
    try:
        since = datetime.strptime(form.value("since"), LOCAL_MINUTE).replace(
            tzinfo=formats(request).zone
        )
    except ValueError:
        form.add("since", "a date and time, e.g. 2026-03-31T14:00")
    else:
        if since > container.clock.now():
            form.add("since", "a moment in the past")
    if not form.ok:
        return await render_endpoint_page(
            request, access, container, endpoint_id, recover=form, status_code=422
        )
    async with container.db.transaction() as session:
        requeued, created = await container.webhooks.recover_since(
            session, access.store_id, endpoint_id, since
        )
    flash(
        request,
        f"Queued again: {requeued} failed deliveries and {created} events it missed.",
    )
    return redirect(
        url(request, "settings_webhook", store_id=access.store_id, endpoint_id=endpoint_id)
    )
