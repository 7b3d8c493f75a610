"""Order processing: the store's configuration, the fraud review queue and deferred-payment
confirmations. Merchant keys only; the use cases live in ``orderbridge.processing``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from orderbridge.api.auth import ContainerDep, MerchantKey, OrderId, merchant_actor
from orderbridge.processing import configs
from orderbridge.processing.confirmations import confirm_payment
from orderbridge.processing.render import (
    render_config,
    render_confirmation,
    render_decision,
    render_review,
)
from orderbridge.processing.reviews import ReviewDecision, decide, pending_reviews
from orderbridge.processing.schemas import (
    PaymentConfirmationIn,
    PaymentConfirmationOut,
    ProcessingConfigOut,
    ReviewDecisionIn,
    ReviewDecisionOut,
    ReviewQueue,
)
from orderbridge.schemas_common import problem_responses

router = APIRouter(tags=["processing"])


@router.get(
    "/v2/stores/{store_id}/processing",
    response_model=ProcessingConfigOut,
    responses=problem_responses(401, 404),
    summary="The store's processing configuration (the defaults until it is first set)",
)
async def get_processing(store_id: str, principal: MerchantKey, container: ContainerDep) -> Any:
    async with container.db.reader() as session:
        version, config = await configs.current(session, principal.store_id)
    return render_config(principal.store_id, version, config)


@router.put(
    "/v2/stores/{store_id}/processing",
    response_model=ProcessingConfigOut,
    responses=problem_responses(400, 401, 404, 422),
    summary="Replace the store's processing configuration (a new version)",
)
async def put_processing(
    store_id: str,
    principal: MerchantKey,
    container: ContainerDep,
    document: Annotated[dict[str, Any], Body()],
) -> Any:
    """Omitted sections and fields take their defaults. Every change is a new version;
    orders keep the version their processing started with. Sending the current
    configuration again creates no version."""
    config = configs.parse(document)
    async with container.db.transaction() as session:
        version, _ = await configs.replace(
            session,
            principal.store_id,
            config,
            now=container.clock.now(),
            by=principal.key_id,
        )
    return render_config(principal.store_id, version, config)


@router.get(
    "/v2/reviews/{store_id}",
    response_model=ReviewQueue,
    responses=problem_responses(401, 404),
    summary="Orders held for a fraud review, nearest deadline first",
)
async def list_reviews(
    store_id: str,
    principal: MerchantKey,
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
) -> Any:
    async with container.db.reader() as session:
        reviews = await pending_reviews(session, principal.store_id, limit=limit)
    return {"reviews": [render_review(review) for review in reviews]}


async def _decide(
    decision: ReviewDecision,
    order_id: str,
    body: ReviewDecisionIn | None,
    principal: MerchantKey,
    container: ContainerDep,
) -> dict[str, Any]:
    async with container.db.transaction() as session:
        decided = await decide(
            session,
            container.orders,
            principal.store_id,
            order_id,
            decision,
            actor=merchant_actor(principal),
            note=body.note if body else None,
            now=container.clock.now(),
        )
        return render_decision(decided.order)


@router.post(
    "/v2/reviews/{store_id}/{order_id}/approve",
    response_model=ReviewDecisionOut,
    responses=problem_responses(401, 404, 409, 422),
    summary="Approve an order held for review: its processing continues",
)
async def approve_review(
    store_id: str,
    order_id: OrderId,
    principal: MerchantKey,
    container: ContainerDep,
    body: ReviewDecisionIn | None = None,
) -> Any:
    """Allowed while the review is pending (`409 order_not_in_review` otherwise); repeating
    the same decision answers 200 unchanged."""
    return await _decide(ReviewDecision.APPROVE, order_id, body, principal, container)


@router.post(
    "/v2/reviews/{store_id}/{order_id}/reject",
    response_model=ReviewDecisionOut,
    responses=problem_responses(401, 404, 409, 422),
    summary="Reject an order held for review: it is cancelled with fraud_detected",
)
async def reject_review(
    store_id: str,
    order_id: OrderId,
    principal: MerchantKey,
    container: ContainerDep,
    body: ReviewDecisionIn | None = None,
) -> Any:
    """The cancellation (and the release of the buyer's money) is made by the worker right
    after; the answer shows the order still `RECEIVED` with `review_status: rejected`."""
    return await _decide(ReviewDecision.REJECT, order_id, body, principal, container)


@router.post(
    "/v2/payments/{store_id}/{order_id}/confirm",
    status_code=201,
    response_model=PaymentConfirmationOut,
    responses={
        200: {"model": PaymentConfirmationOut, "description": "A repeat: the same confirmation"},
        **problem_responses(401, 404, 409, 422),
    },
    summary="Confirm that a deferred payment (bank transfer) arrived",
)
async def confirm_deferred_payment(
    store_id: str,
    order_id: OrderId,
    body: PaymentConfirmationIn,
    principal: MerchantKey,
    container: ContainerDep,
    response: Response,
) -> Any:
    """Recorded once: a repeat with the same amount and reference answers 200 with the
    first confirmation; another amount or reference is `409 payment_already_confirmed`.
    An order paid by card is `409 payment_not_deferred`; one cancelled meanwhile
    `409 order_not_awaiting_payment`. Less than the order total cancels the order with
    `payment_failed` (the money is then sent back by hand)."""
    async with container.db.transaction() as session:
        confirmed = await confirm_payment(
            session,
            container.orders,
            principal.store_id,
            order_id,
            amount=body.amount,
            reference=body.reference,
            actor=merchant_actor(principal),
            now=container.clock.now(),
        )
        rendered = render_confirmation(confirmed.order, confirmed.confirmation)
    if not confirmed.changed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return rendered
