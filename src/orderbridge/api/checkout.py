"""Checkout intake (contract §5): the synchronous call the buyer waits on."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header

from orderbridge.api.auth import CheckoutKey, ContainerDep
from orderbridge.api.responses import json_response
from orderbridge.errors import BadRequest, FieldError, ValidationFailed
from orderbridge.orders.document import render_order
from orderbridge.orders.schemas import CheckoutOrder, OrderOut
from orderbridge.processing.intake import check_payment_provider
from orderbridge.schemas_common import has_control_characters, problem_responses

router = APIRouter(tags=["checkout"])


@router.post(
    "/v2/checkout/{store_id}/orders",
    status_code=201,
    response_model=OrderOut,
    responses={
        200: {"model": OrderOut, "description": "A repeat: the order stored before"},
        **problem_responses(400, 401, 403, 404, 409, 422),
    },
    summary="Submit a completed checkout order",
)
async def submit_order(
    order: CheckoutOrder,
    principal: CheckoutKey,
    container: ContainerDep,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=128, alias="Idempotency-Key")
    ] = None,
) -> Any:
    """Stores the order as `RECEIVED` together with its `order.received` event, and starts
    its processing. A repeat with the same `Idempotency-Key` (or `checkout_id`) returns the
    stored order with status 200 and writes nothing; the same key with a different order is
    a `409 idempotency_key_reused`."""
    if idempotency_key is not None and has_control_characters(idempotency_key):
        raise BadRequest("Idempotency-Key contains control characters", code="invalid_parameter")
    key = idempotency_key or order.checkout_id
    if key is None:
        raise ValidationFailed(
            [
                FieldError(
                    "header.Idempotency-Key",
                    "send an Idempotency-Key header or a checkout_id",
                    "missing",
                )
            ]
        )
    check_payment_provider(order, container.payments)
    async with container.db.transaction() as session:
        outcome = await container.orders.receive(session, principal.store_id, key, order)
        body = render_order(outcome.order)
    if not outcome.changed:
        return json_response(body, 200, {"Idempotent-Replayed": "true"})
    return json_response(body, 201)
