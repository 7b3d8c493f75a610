"""The merchant Order API (contract §4): get, list/search, accept, cancel, timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from orderbridge.api.auth import ContainerDep, MerchantKey, OrderId, merchant_actor
from orderbridge.api.links import page_link
from orderbridge.api.responses import json_response
from orderbridge.clock import rfc3339
from orderbridge.errors import BadRequest, FieldError, ValidationFailed
from orderbridge.ids import FeedPosition, parse_order_id
from orderbridge.orders.document import render_order
from orderbridge.orders.lifecycle import CancellationReason, OrderStatus
from orderbridge.orders.queries import OrderFilter, OrderPageQuery, list_orders, order_events
from orderbridge.orders.schemas import (
    AcceptRequest,
    CancelRequest,
    Links,
    OrderOut,
    OrderPage,
    Timeline,
    TimelineEntry,
)
from orderbridge.processing.timeline import merge_key, step_entries
from orderbridge.refunds.service import refunds_by_order
from orderbridge.schemas_common import (
    RFC3339,
    has_control_characters,
    parse_rfc3339,
    problem_responses,
)

router = APIRouter(tags=["orders"])


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as error:
        raise BadRequest(f"{name}: {error}", code="invalid_parameter") from None


def _text_parameter(value: str | None, name: str) -> str | None:
    if value is not None and has_control_characters(value):
        raise BadRequest(f"{name} contains control characters", code="invalid_parameter")
    return value


def _order_cursor(value: str | None, store_id: str, name: str) -> int | None:
    if not value:
        return None
    parsed = parse_order_id(value)
    if parsed is None or parsed[0] != store_id:
        raise BadRequest(f"{name} is not an order id of this store", code="invalid_cursor")
    return parsed[1]


@router.get(
    "/v2/orders/{store_id}",
    response_model=OrderPage,
    responses=problem_responses(400, 401, 404),
    summary="List and search orders, newest first",
)
async def list_store_orders(
    store_id: str,
    request: Request,
    principal: MerchantKey,
    container: ContainerDep,
    status: Annotated[list[OrderStatus], Query()] = [],  # noqa: B006
    q: Annotated[
        str | None, Query(max_length=320, description="order id, external number or id, email")
    ] = None,
    created_from: Annotated[
        str | None,
        Query(max_length=40, pattern=RFC3339, description="RFC 3339 with a zone, inclusive"),
    ] = None,
    created_to: Annotated[
        str | None,
        Query(max_length=40, pattern=RFC3339, description="RFC 3339 with a zone, exclusive"),
    ] = None,
    after_order_id: Annotated[str | None, Query(max_length=40)] = None,
    before_order_id: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Any:
    """`links.next` continues with older orders (`after_order_id`), `links.previous` goes
    back to newer ones (`before_order_id`)."""
    after = _order_cursor(after_order_id, store_id, "after_order_id")
    before = _order_cursor(before_order_id, store_id, "before_order_id")
    if after is not None and before is not None:
        raise BadRequest(
            "give after_order_id or before_order_id, not both", code="invalid_parameter"
        )
    order_filter = OrderFilter(
        store_id=principal.store_id,
        statuses=tuple(s.value for s in status),
        q=_text_parameter(q, "q") or None,
        created_from=_time(created_from, "created_from"),
        created_to=_time(created_to, "created_to"),
    )
    async with container.db.reader() as session:
        orders = await list_orders(session, OrderPageQuery(order_filter, after, before, limit))
        refunds = await refunds_by_order(session, (order.id for order in orders))
    rendered = [render_order(order, refunds.get(order.id, ())) for order in orders]

    params: list[tuple[str, str]] = [("status", s.value) for s in status]
    if q:
        params.append(("q", q))
    for name, moment in (("created_from", created_from), ("created_to", created_to)):
        if moment is not None:
            params.append((name, moment))
    params.append(("limit", str(limit)))
    current = (
        params
        + ([("after_order_id", after_order_id)] if after_order_id else [])
        + ([("before_order_id", before_order_id)] if before_order_id else [])
    )
    if rendered:
        next_params = params + [("after_order_id", rendered[-1]["id"])]
        previous_params = params + [("before_order_id", rendered[0]["id"])]
    else:
        next_params = current
        previous_params = current
    links = Links(
        next=page_link(request, next_params),
        current=page_link(request, current),
        previous=page_link(request, previous_params),
    )
    return json_response({"links": links.model_dump(), "orders": rendered})


@router.get(
    "/v2/orders/{store_id}/{order_id}",
    response_model=OrderOut,
    responses=problem_responses(401, 404),
    summary="Get an order",
)
async def get_order(
    store_id: str, order_id: OrderId, principal: MerchantKey, container: ContainerDep
) -> Any:
    async with container.db.reader() as session:
        order = await container.orders.load(session, principal.store_id, order_id)
        return json_response(render_order(order, await container.refunds.list(session, order)))


@router.post(
    "/v2/orders/{store_id}/{order_id}/accept",
    response_model=OrderOut,
    responses=problem_responses(401, 404, 409, 422),
    summary="Accept a READY order with your order id and number",
)
async def accept_order(
    store_id: str,
    order_id: OrderId,
    body: AcceptRequest,
    principal: MerchantKey,
    container: ContainerDep,
) -> Any:
    """An order is accepted once. Repeating the call with the same external id and number
    returns 200 and the order unchanged (no second event); other values give
    `409 order_already_accepted`. A `RECEIVED` order gives `409 order_not_ready`, a cancelled
    one `409 order_cancelled`."""
    async with container.db.transaction() as session:
        outcome = await container.orders.accept(
            session,
            principal.store_id,
            order_id,
            external_order_id=body.external.order_id,
            external_order_number=body.external.order_number,
            actor=merchant_actor(principal),
        )
        return json_response(render_order(outcome.order))


@router.post(
    "/v2/orders/{store_id}/{order_id}/cancel",
    response_model=OrderOut,
    responses=problem_responses(401, 404, 409, 422),
    summary="Cancel an order (the full amount goes back to the buyer)",
)
async def cancel_order(
    store_id: str,
    order_id: OrderId,
    principal: MerchantKey,
    container: ContainerDep,
    request: Request,
    body: CancelRequest | None = None,
) -> Any:
    """Allowed from `RECEIVED`, `READY` and `ACCEPTED`. Repeating it on a cancelled order
    returns 200 unchanged. A `COMPLETED` order gives `409 use_refund`."""
    if body is None and (await request.body()).strip() == b"null":
        # No body means the defaults; an explicit null is a body of the wrong type.
        raise ValidationFailed([FieldError("body", "send an object, or no body", "type")])
    body = body or CancelRequest()
    async with container.db.transaction() as session:
        outcome = await container.orders.cancel(
            session,
            principal.store_id,
            order_id,
            reason=CancellationReason(body.reason),
            note=body.note,
            actor=merchant_actor(principal),
        )
        return json_response(render_order(outcome.order))


@router.get(
    "/v2/orders/{store_id}/{order_id}/timeline",
    response_model=Timeline,
    responses=problem_responses(401, 404),
    summary="The order's audit timeline: every status change with actor, reason and time",
)
async def get_timeline(
    store_id: str, order_id: OrderId, principal: MerchantKey, container: ContainerDep
) -> Timeline:
    """Status changes and events merged, in time order, with the outcome of every processing
    step (`kind: step`): which rule fired, what the payment provider answered."""
    async with container.db.reader() as session:
        order = await container.orders.load(session, principal.store_id, order_id)
        events = await order_events(session, order.id)
        steps = await step_entries(session, order.id)
    timed = [
        (
            merge_key(e.occurred_at, is_step=False, first_event=e.name == "order.received"),
            TimelineEntry(
                at=rfc3339(e.occurred_at),
                kind="status_changed" if e.to_status else "event",
                event_id=FeedPosition(e.txid, e.pos).event_id(),
                event_name=e.name,
                from_status=e.from_status,
                to_status=e.to_status,
                actor=e.actor_kind,
                actor_id=e.actor_id,
                reason=e.reason,
                note=e.note,
            ),
        )
        for e in events
    ] + [
        (
            merge_key(s.at, is_step=True, first_event=False),
            TimelineEntry(
                at=rfc3339(s.at),
                kind="step",
                event_id=None,
                event_name=None,
                from_status=None,
                to_status=None,
                actor=s.actor,
                actor_id=s.actor_id,
                reason=s.reason,
                note=None,
                step=s.step,
                outcome=s.outcome,
                summary=s.summary,
                evidence=s.evidence,
            ),
        )
        for s in steps
    ]
    timed.sort(key=lambda pair: pair[0])  # stable: events keep feed order, steps their own
    return Timeline(order_id=order_id, entries=[entry for _, entry in timed])
