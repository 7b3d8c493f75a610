"""The fraud review queue: orders the fraud step held for a person, and that person's
decision.

The fraud step puts an order in review (``review_status='pending'``, ``review_deadline``)
and its job waits until the deadline. A decision only records who decided
(``review_status`` and an ``order_steps`` entry ``review``) and asks the pipeline to run
now; the pipeline's fraud step then passes (approved) or cancels the order with
``fraud_detected`` (rejected). So a decision and the deadline policy take the same road, and
an order is never moved by two writers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import Order, OrderStep
from orderbridge.errors import Conflict
from orderbridge.jobs import queue
from orderbridge.orders.lifecycle import Actor, OrderStatus
from orderbridge.orders.service import PROCESS_ORDER, OrderService
from orderbridge.processing import configs
from orderbridge.processing.outcome import Outcome
from orderbridge.processing.plan import Step

REVIEW_STEP = "review"  # the order_steps entry of a person's decision
PENDING = "pending"


class ReviewDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"

    @property
    def status(self) -> str:
        return "approved" if self is ReviewDecision.APPROVE else "rejected"


class NotInReview(Conflict):
    """The order is not waiting for a review (never held, decided already, or no longer
    RECEIVED)."""

    code, title = "order_not_in_review", "The order is not waiting for a review"


@dataclass(frozen=True)
class PendingReview:
    order: Order
    score: int | None
    hits: list[dict[str, Any]]
    summary: str
    on_deadline: str  # what happens at the deadline: "approve" or "reject"


@dataclass(frozen=True)
class Decided:
    order: Order
    changed: bool  # False: the same decision was taken before (a repeated call)


async def pending_reviews(
    session: AsyncSession, store_id: str, *, limit: int = 100
) -> list[PendingReview]:
    """The store's orders waiting for a review, the most urgent (nearest deadline) first."""
    orders = list(
        (
            await session.scalars(
                select(Order)
                .where(
                    Order.store_id == store_id,
                    Order.status == OrderStatus.RECEIVED.value,
                    Order.review_status == PENDING,
                )
                .order_by(Order.review_deadline, Order.id)
                .limit(limit)
            )
        ).all()
    )
    assessments = await _assessments(session, [o.id for o in orders])
    policies: dict[int | None, str] = {}
    pending = []
    for order in orders:
        step = assessments.get(order.id)
        evidence = step.evidence if step is not None else {}
        if order.processing_version not in policies:
            config = await configs.version(session, store_id, order.processing_version or 0)
            policies[order.processing_version] = config.fraud.on_review_deadline
        pending.append(
            PendingReview(
                order=order,
                score=evidence.get("score"),
                hits=list(evidence.get("hits", [])),
                summary=step.summary if step is not None else "",
                on_deadline=policies[order.processing_version],
            )
        )
    return pending


async def _assessments(session: AsyncSession, order_ids: Sequence[int]) -> dict[int, OrderStep]:
    """The fraud step's assessment that sent each order to review: its first ``review``
    entry (later ones only say the order is still waiting)."""
    if not order_ids:
        return {}
    rows = await session.scalars(
        select(OrderStep)
        .where(
            OrderStep.order_id.in_(order_ids),
            OrderStep.step == Step.FRAUD.value,
            OrderStep.outcome == Outcome.REVIEW.value,
        )
        .order_by(OrderStep.id.desc())
    )
    found: dict[int, OrderStep] = {}
    for row in rows:
        if "score" in row.evidence or row.order_id not in found:
            found[row.order_id] = row
    return found


async def decide(
    session: AsyncSession,
    orders: OrderService,
    store_id: str,
    public_id: str,
    decision: ReviewDecision,
    *,
    actor: Actor,
    note: str | None,
    now: datetime,
) -> Decided:
    """Record a reviewer's decision and run the order's processing now. Allowed while the
    review is pending; the same decision repeated answers as before and writes nothing."""
    order = await orders.load(session, store_id, public_id, for_update=True)
    if order.review_status == decision.status:
        return Decided(order, changed=False)
    if order.review_status != PENDING or order.status != OrderStatus.RECEIVED.value:
        state = order.review_status or "not held for review"
        raise NotInReview(f"order {public_id} is {order.status}, review: {state}")
    order.review_status = decision.status
    order.updated_at = now
    who = f"{actor.kind}" + (f" {actor.id}" if actor.id else "")
    evidence: dict[str, Any] = {
        "decision": decision.status,
        "actor": actor.kind.value,
        "actor_id": actor.id,
    }
    if note:
        evidence["note"] = note
    session.add(
        OrderStep(
            order_id=order.id,
            step=REVIEW_STEP,
            outcome=decision.status,
            reason=None,
            summary=f"{decision.status} in review by {who}" + (f": {note}" if note else ""),
            evidence=evidence,
            at=now,
        )
    )
    # The waiting job stays queued for the deadline; when it runs, the order is no longer
    # RECEIVED and it ends without effect.
    await queue.enqueue(session, PROCESS_ORDER, now=now, order_id=order.id)
    await session.flush()
    return Decided(order, changed=True)
