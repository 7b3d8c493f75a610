"""Refunds of completed orders (contract §4): create and list."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response

from orderbridge.api.auth import ContainerDep, MerchantKey, OrderId
from orderbridge.errors import BadRequest
from orderbridge.orders.lifecycle import Actor, ActorKind
from orderbridge.refunds.schemas import RefundList, RefundOut, RefundRequest, render_refund
from orderbridge.schemas_common import has_control_characters, problem_responses

router = APIRouter(tags=["refunds"])


@router.post(
    "/v2/orders/{store_id}/{order_id}/refunds",
    status_code=201,
    response_model=RefundOut,
    responses={
        200: {"model": RefundOut, "description": "A repeat: the refund made before"},
        **problem_responses(400, 401, 403, 404, 409, 422),
    },
    summary="Refund a completed order, in full or in part",
)
async def create_refund(
    store_id: str,
    order_id: OrderId,
    body: RefundRequest,
    principal: MerchantKey,
    container: ContainerDep,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=128,
            alias="Idempotency-Key",
            description="a repeat with the same key returns the same refund; without a key "
            "every call is a new refund",
        ),
    ] = None,
) -> Any:
    """Send `{"amount": "10.00"}`, or `{"items": [{"item_id": "1", "quantity": 1}],
    "shipping": true}` (items, shipping or both), plus an optional `reason`. An item's units
    share its `total` (after discount, with tax and duty), rounded so that all units of a
    line add up to its total; `shipping` is its price plus tax, once.

    The refund is answered `pending` and sent to the payment provider in the background;
    `refund.created`, then `refund.completed` or `refund.failed` appear in the event feed
    with the refund id as `entity_id`. Never more in total than was captured: a refund that
    would exceed what is left (captured − refunded − pending) gets
    `409 refund_exceeds_captured`; an order that is not `COMPLETED` gets
    `409 order_not_completed`. A repeat with the same `Idempotency-Key` returns the refund
    made before with status 200; the same key with a different body is
    `409 idempotency_key_reused`."""
    if idempotency_key is not None and has_control_characters(idempotency_key):
        raise BadRequest("Idempotency-Key contains control characters", code="invalid_parameter")
    async with container.db.transaction() as session:
        outcome = await container.refunds.create(
            session,
            principal.store_id,
            order_id,
            body,
            idempotency_key,
            Actor(ActorKind.MERCHANT, principal.key_id),
        )
        rendered = render_refund(outcome.refund)
    if not outcome.created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return rendered


@router.get(
    "/v2/orders/{store_id}/{order_id}/refunds",
    response_model=RefundList,
    responses=problem_responses(400, 401, 403, 404),
    summary="The order's refunds and cancellation releases, oldest first",
)
async def list_refunds(
    store_id: str, order_id: OrderId, principal: MerchantKey, container: ContainerDep
) -> Any:
    async with container.db.reader() as session:
        order = await container.orders.load(session, principal.store_id, order_id)
        refunds = await container.refunds.list(session, order)
        return {"refunds": [render_refund(refund) for refund in refunds]}
