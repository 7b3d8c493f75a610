"""Every legal and illegal status change of contract §1, against the pure lifecycle."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from orderbridge.errors import IllegalTransition
from orderbridge.orders.lifecycle import (
    Actor,
    ActorKind,
    CancellationReason,
    OrderStatus,
    change_status,
)

S, A, R = OrderStatus, ActorKind, CancellationReason
AT = datetime(2026, 5, 1, tzinfo=UTC)

# The contract's table, written out independently of the implementation's.
LEGAL = {
    (None, S.RECEIVED, A.SYSTEM),
    (S.RECEIVED, S.READY, A.SYSTEM),
    (S.RECEIVED, S.CANCELLED, A.SYSTEM),
    (S.RECEIVED, S.CANCELLED, A.MERCHANT),
    (S.READY, S.ACCEPTED, A.MERCHANT),
    (S.READY, S.ACCEPTED, A.PLUG_AND_PLAY),
    (S.READY, S.CANCELLED, A.MERCHANT),
    (S.READY, S.CANCELLED, A.PLUG_AND_PLAY),
    (S.ACCEPTED, S.COMPLETED, A.SYSTEM),
    (S.ACCEPTED, S.CANCELLED, A.MERCHANT),
}
VALID_REASON = {
    (S.RECEIVED, A.SYSTEM): R.PAYMENT_FAILED,
    (S.RECEIVED, A.MERCHANT): R.MERCHANT_REQUEST,
    (S.READY, A.MERCHANT): R.MERCHANT_REQUEST,
    (S.READY, A.PLUG_AND_PLAY): R.STORE_PUSH_FAILED,
    (S.ACCEPTED, A.MERCHANT): R.MERCHANT_REQUEST,
}
ALL = list(itertools.product([None, *S], list(S), list(A)))


@pytest.mark.parametrize(("current", "to", "actor"), sorted(LEGAL, key=str))
def test_legal_change_returns_the_change_with_its_event(
    current: OrderStatus | None, to: OrderStatus, actor: ActorKind
) -> None:
    reason = VALID_REASON.get((current, actor)) if to is S.CANCELLED else None  # type: ignore[arg-type]
    change = change_status(current, to, Actor(actor, "who"), AT, reason=reason, note="n")
    assert (change.from_status, change.to_status, change.actor.kind) == (current, to, actor)
    assert change.event_name == f"order.{to.value.lower()}"
    assert change.at == AT and change.reason == reason


@pytest.mark.parametrize(("current", "to", "actor"), [t for t in ALL if t not in LEGAL], ids=str)
def test_illegal_change_is_refused(
    current: OrderStatus | None, to: OrderStatus, actor: ActorKind
) -> None:
    reason = R.MERCHANT_REQUEST if to is S.CANCELLED else None
    with pytest.raises(IllegalTransition):
        change_status(current, to, Actor(actor), AT, reason=reason)


@pytest.mark.parametrize("status", [S.COMPLETED, S.CANCELLED])
def test_terminal_statuses_go_nowhere(status: OrderStatus) -> None:
    for to, actor in itertools.product(S, A):
        with pytest.raises(IllegalTransition):
            change_status(status, to, Actor(actor), AT, reason=R.MERCHANT_REQUEST)


@pytest.mark.parametrize(
    ("current", "to", "code"),
    [
        (S.RECEIVED, S.ACCEPTED, "order_not_ready"),
        (S.CANCELLED, S.ACCEPTED, "order_cancelled"),
        (S.ACCEPTED, S.ACCEPTED, "order_already_accepted"),
        (S.COMPLETED, S.ACCEPTED, "order_already_accepted"),
    ],
)
def test_refused_accept_names_the_condition(
    current: OrderStatus, to: OrderStatus, code: str
) -> None:
    with pytest.raises(IllegalTransition) as refused:
        change_status(current, to, Actor(A.MERCHANT), AT)
    assert refused.value.code == code


def test_cancelling_a_completed_order_points_to_refunds() -> None:
    with pytest.raises(IllegalTransition) as refused:
        change_status(S.COMPLETED, S.CANCELLED, Actor(A.MERCHANT), AT, reason=R.MERCHANT_REQUEST)
    assert refused.value.code == "use_refund"


def test_system_never_cancels_a_ready_order_except_plug_and_play_push_failure() -> None:
    for reason in R:
        with pytest.raises(IllegalTransition):
            change_status(S.READY, S.CANCELLED, Actor(A.SYSTEM), AT, reason=reason)
    for reason in set(R) - {R.STORE_PUSH_FAILED}:
        with pytest.raises(IllegalTransition) as refused:
            change_status(S.READY, S.CANCELLED, Actor(A.PLUG_AND_PLAY), AT, reason=reason)
        assert refused.value.code == "cancel_reason_not_allowed"
    change = change_status(
        S.READY, S.CANCELLED, Actor(A.PLUG_AND_PLAY), AT, reason=R.STORE_PUSH_FAILED
    )
    assert change.reason is R.STORE_PUSH_FAILED


@pytest.mark.parametrize("reason", [R.PAYMENT_FAILED, R.FRAUD_DETECTED, R.PROHIBITED_GOODS])
def test_system_cancels_a_received_order_for_processing_reasons(reason: R) -> None:
    assert change_status(S.RECEIVED, S.CANCELLED, Actor(A.SYSTEM), AT, reason=reason).reason


@pytest.mark.parametrize("reason", [R.STORE_PUSH_FAILED, R.MERCHANT_REQUEST, None])
def test_system_cannot_cancel_a_received_order_for_other_reasons(reason: R | None) -> None:
    with pytest.raises(IllegalTransition):
        change_status(S.RECEIVED, S.CANCELLED, Actor(A.SYSTEM), AT, reason=reason)


def test_merchant_cannot_claim_a_system_reason() -> None:
    for status in (S.RECEIVED, S.READY, S.ACCEPTED):
        with pytest.raises(IllegalTransition):
            change_status(status, S.CANCELLED, Actor(A.MERCHANT), AT, reason=R.PAYMENT_FAILED)


def test_only_a_cancellation_carries_a_reason() -> None:
    with pytest.raises(IllegalTransition):
        change_status(S.RECEIVED, S.READY, Actor(A.SYSTEM), AT, reason=R.PAYMENT_FAILED)
