"""The order page's actions: accept, cancel, refund, retry push. Each parses its form with
the API's own request model, calls the same use case as the API in one transaction, and
redirects back to the order with a flash; a refusal re-renders the order page with the
message next to the field and what the user typed. Whether an action is offered is decided
by the lifecycle (``order_page.allowed_actions``); the use case checks again regardless."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from orderbridge.bootstrap import Container
from orderbridge.errors import NotFound, OrderbridgeError
from orderbridge.orders.lifecycle import CancellationReason
from orderbridge.orders.schemas import AcceptRequest, CancelRequest
from orderbridge.refunds.schemas import RefundRequest
from orderbridge.ui.deps import ContainerDep, StoreAccess, StoreContext
from orderbridge.ui.forms import FORM_ERROR, FormState
from orderbridge.ui.orders import OrderIdPath, render_order_page
from orderbridge.ui.rendering import flash, redirect, url

router = APIRouter()

BASE = "/stores/{store_id}/orders/{order_id}"


async def _refused(
    request: Request,
    access: StoreContext,
    container: Container,
    order_id: str,
    name: str,
    form: FormState,
    status_code: int,
) -> Response:
    return await render_order_page(
        request, access, container, order_id, forms={name: form}, status_code=status_code
    )


def _back(request: Request, access: StoreContext, order_id: str) -> Response:
    return redirect(url(request, "order", store_id=access.store_id, order_id=order_id))


@router.post(BASE + "/accept", name="order_accept")
async def accept(
    request: Request, order_id: OrderIdPath, access: StoreAccess, container: ContainerDep
) -> Response:
    form = FormState.of(await request.form())
    try:
        body = AcceptRequest.model_validate(
            {
                "external": {
                    "order_id": form.value("external_order_id"),
                    "order_number": form.value("external_order_number"),
                }
            }
        )
    except ValidationError as error:
        form.absorb_pydantic(
            error,
            {
                "external.order_id": "external_order_id",
                "external.order_number": "external_order_number",
            },
        )
        return await _refused(request, access, container, order_id, "accept", form, 422)
    try:
        async with container.db.transaction() as session:
            await container.orders.accept(
                session,
                access.store_id,
                order_id,
                external_order_id=body.external.order_id,
                external_order_number=body.external.order_number,
                actor=access.actor,
            )
    except NotFound:
        raise
    except OrderbridgeError as error:
        form.absorb(error)
        return await _refused(request, access, container, order_id, "accept", form, error.status)
    flash(request, f"Order accepted as {body.external.order_number}.")
    return _back(request, access, order_id)


@router.post(BASE + "/cancel", name="order_cancel")
async def cancel(
    request: Request, order_id: OrderIdPath, access: StoreAccess, container: ContainerDep
) -> Response:
    form = FormState.of(await request.form())
    try:
        body = CancelRequest.model_validate(
            {"reason": form.value("reason"), "note": form.value("note") or None}
        )
    except ValidationError as error:
        form.absorb_pydantic(error)
        return await _refused(request, access, container, order_id, "cancel", form, 422)
    if form.value("confirm") != "yes":
        form.add("confirm", "tick the box to confirm the cancellation and the refund")
        return await _refused(request, access, container, order_id, "cancel", form, 422)
    try:
        async with container.db.transaction() as session:
            await container.orders.cancel(
                session,
                access.store_id,
                order_id,
                reason=CancellationReason(body.reason),
                note=body.note,
                actor=access.actor,
            )
    except NotFound:
        raise
    except OrderbridgeError as error:
        form.absorb(error)
        return await _refused(request, access, container, order_id, "cancel", form, error.status)
    flash(request, "Order cancelled. The full payment goes back to the buyer.")
    return _back(request, access, order_id)


def _refund_body(form: FormState) -> dict[str, Any]:
    """The API's refund request from the form: an amount, or item quantities
    (``qty_<item id>``) and the shipping box."""
    body: dict[str, Any] = {"reason": form.value("reason") or None}
    if form.value("mode") == "items":
        items = []
        for key, value in form.values.items():
            if key.startswith("qty_") and value.strip() not in ("", "0"):
                quantity: Any = int(value) if value.strip().isdigit() else value
                items.append({"item_id": key.removeprefix("qty_"), "quantity": quantity})
        if items:
            body["items"] = items
        if form.value("shipping") == "yes":
            body["shipping"] = True
        if not items and "shipping" not in body:
            body["items"] = []
    else:
        body["amount"] = form.value("amount")
    return body


def _refund_fields(form: FormState, body: dict[str, Any]) -> dict[str, str]:
    """Error paths of the request (``items.0.quantity``) to form fields (``qty_1``)."""
    fields = {"amount": "amount", "shipping": "shipping", "reason": "reason", "": FORM_ERROR}
    for index, item in enumerate(body.get("items") or []):
        fields[f"items.{index}.quantity"] = f"qty_{item['item_id']}"
        fields[f"items.{index}.item_id"] = f"qty_{item['item_id']}"
    fields["items"] = FORM_ERROR
    fields["body"] = FORM_ERROR
    return fields


@router.post(BASE + "/refund", name="order_refund")
async def refund(
    request: Request, order_id: OrderIdPath, access: StoreAccess, container: ContainerDep
) -> Response:
    form = FormState.of(await request.form())
    body = _refund_body(form)
    fields = _refund_fields(form, body)
    if body.get("items") == []:
        form.add(FORM_ERROR, "choose at least one item quantity, or the shipping")
        return await _refused(request, access, container, order_id, "refund", form, 422)
    try:
        refund_request = RefundRequest.model_validate(body)
    except ValidationError as error:
        form.absorb_pydantic(error, fields)
        return await _refused(request, access, container, order_id, "refund", form, 422)
    # The form carries a key made when it was shown: submitting it twice (a double click,
    # a reload) makes one refund.
    key = form.value("idempotency_key")[:128] or None
    try:
        async with container.db.transaction() as session:
            outcome = await container.refunds.create(
                session, access.store_id, order_id, refund_request, key, access.actor
            )
            amount, currency = outcome.refund.amount, outcome.refund.currency
    except NotFound:
        raise
    except OrderbridgeError as error:
        form.absorb(error, fields)
        return await _refused(request, access, container, order_id, "refund", form, error.status)
    flash(request, f"Refund of {amount} {currency} started.")
    return _back(request, access, order_id)


@router.post(BASE + "/retry-push", name="order_retry_push")
async def retry_push(
    request: Request, order_id: OrderIdPath, access: StoreAccess, container: ContainerDep
) -> Response:
    try:
        async with container.db.transaction() as session:
            await container.pushes.retry(session, access.store_id, order_id)
    except NotFound:
        raise
    except OrderbridgeError as error:
        form = FormState()
        form.absorb(error)
        return await _refused(request, access, container, order_id, "push", form, error.status)
    flash(request, "Push started again.")
    return _back(request, access, order_id)
