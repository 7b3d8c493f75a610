"""The processing side of an order's timeline: every step outcome with its evidence (which
rule fired, what the provider answered), and the decisions people took (review, payment
confirmation). The timeline endpoint merges these with the order's status events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import OrderStep
from orderbridge.orders.lifecycle import ActorKind


@dataclass(frozen=True)
class StepEntry:
    at: datetime
    step: str  # payment, prohibited_goods, fraud, capture; review, payment_confirmation
    outcome: str  # pass, fail, wait, review; approved, rejected; received
    reason: str | None  # the cancellation reason of a failed step
    summary: str
    evidence: dict[str, Any]
    actor: str  # who: the system for steps, the reviewer for a review decision
    actor_id: str | None


async def step_entries(session: AsyncSession, order_id: int) -> list[StepEntry]:
    """The order's step entries, oldest first."""
    rows = await session.scalars(
        select(OrderStep).where(OrderStep.order_id == order_id).order_by(OrderStep.id)
    )
    return [_entry(row) for row in rows]


def _entry(row: OrderStep) -> StepEntry:
    evidence = dict(row.evidence)
    # Decisions taken by people carry their actor in the evidence; the pipeline's own
    # steps are the system's.
    actor = evidence.get("actor")
    actor_id = evidence.get("actor_id")
    if not isinstance(actor, str):
        actor, actor_id = ActorKind.SYSTEM.value, "processing"
    return StepEntry(
        at=row.at,
        step=row.step,
        outcome=row.outcome,
        reason=row.reason,
        summary=row.summary,
        evidence=evidence,
        actor=actor,
        actor_id=actor_id if isinstance(actor_id, str) else None,
    )


def merge_key(at: datetime, *, is_step: bool, first_event: bool) -> tuple[datetime, int]:
    """Sort key of a merged timeline. Entries of the same instant (one processing run writes
    its steps and the status change it leads to with one time) keep their causal order: the
    order's arrival, then its steps, then the status changes and events they caused."""
    return at, 0 if first_event else 1 if is_step else 2
