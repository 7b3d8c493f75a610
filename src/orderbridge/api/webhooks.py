"""Webhook endpoints, secrets and the delivery log (``/v2/webhooks/{store_id}``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from orderbridge.api.auth import ContainerDep, MerchantKey
from orderbridge.clock import rfc3339
from orderbridge.db.models import Event
from orderbridge.errors import BadRequest, FieldError, ValidationFailed
from orderbridge.ids import parse_order_id
from orderbridge.schemas_common import problem_responses
from orderbridge.webhooks.render import (
    optional_time,
    render_attempt,
    render_delivery,
    render_endpoint,
)
from orderbridge.webhooks.repository import events_by_id
from orderbridge.webhooks.schemas import (
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointUpdate,
    RecoverRequest,
    RecoverResult,
    RotateRequest,
    SecretOut,
    Secrets,
)
from orderbridge.webhooks.service import DeliveryFilter, StoredSecret

router = APIRouter(tags=["webhooks"])

DELIVERY_STATUSES = ("pending", "sending", "succeeded", "failed")


# ---- deliveries (declared first: "deliveries" is not an endpoint id) ------------------------


@router.get(
    "/v2/webhooks/{store_id}/deliveries",
    response_model=DeliveryPage,
    responses=problem_responses(400, 401, 404),
    summary="The delivery log: filter by endpoint, order and status, newest first",
)
async def list_deliveries(
    store_id: str,
    principal: MerchantKey,
    container: ContainerDep,
    endpoint_id: Annotated[str | None, Query(max_length=32)] = None,
    order_id: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[list[str], Query()] = [],  # noqa: B006
    before: Annotated[int | None, Query(ge=1, description="cursor: next_cursor of a page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Any:
    unknown = sorted(set(status) - set(DELIVERY_STATUSES))
    if unknown:
        raise BadRequest(f"unknown status(es): {', '.join(unknown)}", code="invalid_parameter")
    order_number = None
    if order_id is not None:
        parsed = parse_order_id(order_id)
        if parsed is None or parsed[0] != principal.store_id:
            raise BadRequest("order_id is not an order of this store", code="invalid_parameter")
        order_number = parsed[1]
    query = DeliveryFilter(
        principal.store_id, endpoint_id, order_number, tuple(status), before, limit
    )
    async with container.db.reader() as session:
        deliveries = await container.webhooks.list_deliveries(session, query)
        events = await events_by_id(session, {d.event_id for d in deliveries})
    rows = [render_delivery(d, events.get(d.event_id)) for d in deliveries]
    next_cursor = deliveries[-1].id if len(deliveries) == limit else None
    return {"deliveries": rows, "next_cursor": next_cursor}


@router.get(
    "/v2/webhooks/{store_id}/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    responses=problem_responses(401, 404),
    summary="One delivery with every attempt",
)
async def get_delivery(
    store_id: str, delivery_id: int, principal: MerchantKey, container: ContainerDep
) -> Any:
    async with container.db.reader() as session:
        delivery, event, attempts = await container.webhooks.get_delivery(
            session, principal.store_id, delivery_id
        )
    return {
        **render_delivery(delivery, event),
        "attempt_log": [render_attempt(a) for a in attempts],
    }


@router.post(
    "/v2/webhooks/{store_id}/deliveries/{delivery_id}/resend",
    response_model=DeliveryOut,
    responses=problem_responses(401, 404),
    summary="Send a delivery again now",
)
async def resend_delivery(
    store_id: str, delivery_id: int, principal: MerchantKey, container: ContainerDep
) -> Any:
    async with container.db.transaction() as session:
        delivery = await container.webhooks.resend(session, principal.store_id, delivery_id)
        event = await session.get(Event, delivery.event_id)
        return render_delivery(delivery, event)


def _secrets(endpoint_id: str, secrets: Sequence[StoredSecret]) -> Secrets:
    return Secrets(
        endpoint_id=endpoint_id,
        secrets=[
            SecretOut(
                secret=s.secret,
                created_at=rfc3339(s.created_at),
                expires_at=optional_time(s.expires_at),
            )
            for s in secrets
        ],
    )


# ---- endpoints ----------------------------------------------------------------------------


@router.post(
    "/v2/webhooks/{store_id}",
    status_code=201,
    response_model=EndpointCreated,
    responses=problem_responses(401, 404, 422),
    summary="Subscribe a URL to the store's events",
)
async def create_endpoint(
    store_id: str, body: EndpointCreate, principal: MerchantKey, container: ContainerDep
) -> Any:
    """The signing secret (`whsec_…`) is in the answer; later only `secret/reveal` shows it.
    URLs must be public https addresses (loopback, private, link-local and metadata
    addresses are refused, also after DNS resolution)."""
    async with container.db.transaction() as session:
        endpoint, secret = await container.webhooks.create_endpoint(
            session, principal.store_id, body
        )
        return {**render_endpoint(endpoint), "secret": secret}


@router.get(
    "/v2/webhooks/{store_id}",
    response_model=list[EndpointOut],
    responses=problem_responses(401, 404),
    summary="List the store's webhook endpoints",
)
async def list_endpoints(store_id: str, principal: MerchantKey, container: ContainerDep) -> Any:
    async with container.db.reader() as session:
        endpoints = await container.webhooks.list_endpoints(session, principal.store_id)
        return [render_endpoint(e) for e in endpoints]


@router.get(
    "/v2/webhooks/{store_id}/{endpoint_id}",
    response_model=EndpointOut,
    responses=problem_responses(401, 404),
    summary="Get a webhook endpoint",
)
async def get_endpoint(
    store_id: str, endpoint_id: str, principal: MerchantKey, container: ContainerDep
) -> Any:
    async with container.db.reader() as session:
        return render_endpoint(
            await container.webhooks.get_endpoint(session, principal.store_id, endpoint_id)
        )


@router.patch(
    "/v2/webhooks/{store_id}/{endpoint_id}",
    response_model=EndpointOut,
    responses=problem_responses(401, 404, 422),
    summary="Change a webhook endpoint (enable it again after it was disabled)",
)
async def update_endpoint(
    store_id: str,
    endpoint_id: str,
    body: EndpointUpdate,
    principal: MerchantKey,
    container: ContainerDep,
) -> Any:
    async with container.db.transaction() as session:
        endpoint = await container.webhooks.update_endpoint(
            session, principal.store_id, endpoint_id, body
        )
        return render_endpoint(endpoint)


@router.delete(
    "/v2/webhooks/{store_id}/{endpoint_id}",
    status_code=204,
    responses=problem_responses(401, 404),
    summary="Delete a webhook endpoint and its delivery log",
)
async def delete_endpoint(
    store_id: str, endpoint_id: str, principal: MerchantKey, container: ContainerDep
) -> Response:
    async with container.db.transaction() as session:
        await container.webhooks.delete_endpoint(session, principal.store_id, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/v2/webhooks/{store_id}/{endpoint_id}/secret/reveal",
    response_model=Secrets,
    responses=problem_responses(401, 404),
    summary="Show the endpoint's live signing secrets (newest first)",
)
async def reveal_secrets(
    store_id: str, endpoint_id: str, principal: MerchantKey, container: ContainerDep
) -> Any:
    async with container.db.reader() as session:
        await container.webhooks.get_endpoint(session, principal.store_id, endpoint_id)
        secrets = await container.webhooks.live_secrets(session, endpoint_id)
    return _secrets(endpoint_id, secrets)


@router.post(
    "/v2/webhooks/{store_id}/{endpoint_id}/secret/rotate",
    response_model=Secrets,
    responses=problem_responses(401, 404, 422),
    summary="Make a new signing secret; the old one keeps signing during the overlap",
)
async def rotate_secret(
    store_id: str,
    endpoint_id: str,
    principal: MerchantKey,
    container: ContainerDep,
    body: RotateRequest | None = None,
) -> Any:
    """During the overlap (default 24 h) every delivery carries two signatures, one per
    secret, so the receiver can switch to the new secret at its own pace."""
    overlap = None
    if body is not None and body.overlap_hours is not None:
        overlap = timedelta(hours=body.overlap_hours)
    async with container.db.transaction() as session:
        await container.webhooks.rotate_secret(session, principal.store_id, endpoint_id, overlap)
        secrets = await container.webhooks.live_secrets(session, endpoint_id)
    return _secrets(endpoint_id, secrets)


@router.post(
    "/v2/webhooks/{store_id}/{endpoint_id}/recover",
    response_model=RecoverResult,
    responses=problem_responses(401, 404, 422),
    summary="Send again every failed delivery since a time, and the events missed meanwhile",
)
async def recover(
    store_id: str,
    endpoint_id: str,
    body: RecoverRequest,
    principal: MerchantKey,
    container: ContainerDep,
) -> Any:
    try:
        since = datetime.fromisoformat(body.since.replace("Z", "+00:00"))
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise ValidationFailed([FieldError("since", "an RFC 3339 time with a time zone")])
    async with container.db.transaction() as session:
        requeued, created = await container.webhooks.recover_since(
            session, principal.store_id, endpoint_id, since
        )
    return RecoverResult(requeued=requeued, created=created)
