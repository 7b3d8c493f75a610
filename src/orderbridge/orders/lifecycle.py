"""The order lifecycle of contract §1: one transition table and one function that changes a
status. Pure: no database, no clock of its own.

``change_status`` either returns the ``StatusChange`` to record (which becomes the order's
event and audit entry in one row) or raises ``IllegalTransition`` with the stable code the
API answers with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from orderbridge.errors import IllegalTransition


class OrderStatus(StrEnum):
    RECEIVED = "RECEIVED"
    READY = "READY"
    ACCEPTED = "ACCEPTED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class ActorKind(StrEnum):
    SYSTEM = "system"
    MERCHANT = "merchant"
    PLUG_AND_PLAY = "plug_and_play"


class CancellationReason(StrEnum):
    PAYMENT_FAILED = "payment_failed"
    FRAUD_DETECTED = "fraud_detected"
    PROHIBITED_GOODS = "prohibited_goods"
    STORE_PUSH_FAILED = "store_push_failed"
    MERCHANT_REQUEST = "merchant_request"


S = OrderStatus
A = ActorKind
R = CancellationReason

# Who may move an order from one status to another (contract §1). Cancellations also
# depend on the reason: see CANCEL_REASONS.
TRANSITIONS: dict[tuple[OrderStatus | None, OrderStatus], frozenset[ActorKind]] = {
    (None, S.RECEIVED): frozenset({A.SYSTEM}),
    (S.RECEIVED, S.READY): frozenset({A.SYSTEM}),
    (S.RECEIVED, S.CANCELLED): frozenset({A.SYSTEM, A.MERCHANT}),
    (S.READY, S.ACCEPTED): frozenset({A.MERCHANT, A.PLUG_AND_PLAY}),
    (S.READY, S.CANCELLED): frozenset({A.MERCHANT, A.PLUG_AND_PLAY}),
    (S.ACCEPTED, S.COMPLETED): frozenset({A.SYSTEM}),
    (S.ACCEPTED, S.CANCELLED): frozenset({A.MERCHANT}),
}

_SYSTEM_RECEIVED = frozenset({R.PAYMENT_FAILED, R.FRAUD_DETECTED, R.PROHIBITED_GOODS})
_MERCHANT = frozenset({R.MERCHANT_REQUEST, R.FRAUD_DETECTED})

# Which reasons an actor may give when cancelling from a status. Once READY the system
# never cancels, except plug & play under the store's `cancel` failure policy.
CANCEL_REASONS: dict[tuple[OrderStatus, ActorKind], frozenset[CancellationReason]] = {
    (S.RECEIVED, A.SYSTEM): _SYSTEM_RECEIVED,
    (S.RECEIVED, A.MERCHANT): _MERCHANT,
    (S.READY, A.MERCHANT): _MERCHANT,
    (S.READY, A.PLUG_AND_PLAY): frozenset({R.STORE_PUSH_FAILED}),
    (S.ACCEPTED, A.MERCHANT): _MERCHANT,
}

EVENT_FOR_STATUS: dict[OrderStatus, str] = {
    S.RECEIVED: "order.received",
    S.READY: "order.ready",
    S.ACCEPTED: "order.accepted",
    S.COMPLETED: "order.completed",
    S.CANCELLED: "order.cancelled",
}

# The stable error code when a status is not reachable, per (from, to).
_REFUSAL_CODES: dict[tuple[OrderStatus, OrderStatus], str] = {
    (S.RECEIVED, S.ACCEPTED): "order_not_ready",
    (S.CANCELLED, S.ACCEPTED): "order_cancelled",
    (S.CANCELLED, S.CANCELLED): "order_cancelled",
    (S.COMPLETED, S.CANCELLED): "use_refund",
    (S.ACCEPTED, S.ACCEPTED): "order_already_accepted",
    (S.COMPLETED, S.ACCEPTED): "order_already_accepted",
}


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: str | None = None  # key id, user id or job id: who exactly

    @classmethod
    def system(cls, detail: str | None = None) -> Actor:
        return cls(ActorKind.SYSTEM, detail)


@dataclass(frozen=True)
class StatusChange:
    """One status change: recorded as the order's event and its audit entry."""

    from_status: OrderStatus | None
    to_status: OrderStatus
    actor: Actor
    at: datetime
    reason: CancellationReason | None = None
    note: str | None = None

    @property
    def event_name(self) -> str:
        return EVENT_FOR_STATUS[self.to_status]


def can_change(current: OrderStatus | None, to: OrderStatus, actor: ActorKind) -> bool:
    return actor in TRANSITIONS.get((current, to), frozenset())


def change_status(
    current: OrderStatus | None,
    to: OrderStatus,
    actor: Actor,
    at: datetime,
    *,
    reason: CancellationReason | None = None,
    note: str | None = None,
) -> StatusChange:
    """Check a status change against the table and return it, or raise IllegalTransition."""
    if not can_change(current, to, actor.kind):
        code = _REFUSAL_CODES.get((current, to)) if current is not None else None
        raise IllegalTransition(
            f"an order cannot go from {current or 'nothing'} to {to} by {actor.kind}",
            code=code or "illegal_transition",
        )
    if to is S.CANCELLED:
        assert current is not None  # (None, CANCELLED) is not in the table
        allowed = CANCEL_REASONS.get((current, actor.kind), frozenset())
        if reason not in allowed:
            raise IllegalTransition(
                f"{actor.kind} cannot cancel a {current} order with reason {reason}",
                code="cancel_reason_not_allowed",
            )
    elif reason is not None:
        raise IllegalTransition("only a cancellation has a reason", code="illegal_transition")
    return StatusChange(current, to, actor, at, reason, note)
