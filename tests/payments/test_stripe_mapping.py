"""How the Stripe provider reads Stripe: errors → the port's two kinds, PaymentIntents (as
real Stripe sends them, which localstripe does not fully imitate) → PaymentStatus. Pure."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import stripe

from orderbridge.payments.port import (
    CurrencyMismatch,
    PaymentNotFound,
    PaymentRejected,
    PaymentState,
    PaymentStateConflict,
    ProviderUnavailable,
    RefundExceedsCaptured,
    RefundStatus,
)
from orderbridge.payments.stripe_provider import intent_status, refund_outcome, translate_error


@pytest.mark.parametrize(
    "error",
    [
        stripe.APIConnectionError("connection reset", should_retry=True),
        stripe.RateLimitError("too many requests", http_status=429),
        stripe.APIError("internal", http_status=500),
        stripe.APIError("bad gateway", http_status=502),
        stripe.APIError("idempotency key in use", http_status=409, code="idempotency_key_in_use"),
        stripe.APIError("no status"),
        stripe.AuthenticationError("invalid api key", http_status=401),
        stripe.PermissionError("restricted key", http_status=403),
    ],
    ids=lambda e: f"{type(e).__name__}-{e.http_status}",
)
def test_transient_and_configuration_errors_are_retryable(error: stripe.StripeError) -> None:
    translated = translate_error(error)

    assert isinstance(translated, ProviderUnavailable)
    assert translated.retryable


def test_card_error_carries_the_decline_code() -> None:
    error = stripe.CardError(
        "Your card has insufficient funds.",
        None,
        "card_declined",
        http_status=402,
        json_body={"error": {"code": "card_declined", "decline_code": "insufficient_funds"}},
    )

    translated = translate_error(error)

    assert isinstance(translated, PaymentRejected)
    assert not translated.retryable
    assert translated.code == "insufficient_funds"


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("resource_missing", 404, PaymentNotFound),
        (None, 404, PaymentNotFound),
        ("payment_intent_unexpected_state", 400, PaymentStateConflict),
        ("charge_already_refunded", 400, RefundExceedsCaptured),
        ("parameter_invalid_integer", 400, PaymentRejected),
    ],
)
def test_invalid_requests_are_permanent_and_named(
    code: str | None, status: int, expected: type[PaymentRejected]
) -> None:
    translated = translate_error(stripe.InvalidRequestError("no", None, code, http_status=status))

    assert type(translated) is expected
    assert not translated.retryable


def test_idempotency_key_reused_with_other_parameters_is_permanent() -> None:
    translated = translate_error(stripe.IdempotencyError("keys reused", http_status=400))

    assert isinstance(translated, PaymentRejected)
    assert translated.code == "idempotency_key_reused"


def _intent(**fields: Any) -> dict[str, Any]:
    intent: dict[str, Any] = {
        "id": "pi_1",
        "object": "payment_intent",
        "amount": 4990,
        "currency": "eur",
        "capture_method": "manual",
        "status": "requires_capture",
        "amount_capturable": 4990,
        "amount_received": 0,
        "latest_charge": None,
        "last_payment_error": None,
        "next_action": None,
        "payment_method": "pm_1",
    }
    intent.update(fields)
    return intent


def test_stripe_shaped_authorisation() -> None:
    charge = {
        "id": "ch_1",
        "status": "succeeded",
        "captured": False,
        "amount": 4990,
        "amount_refunded": 0,
        "payment_method_details": {"card": {"fingerprint": "Xt5EWLLDS7FJjR1c", "country": "DE"}},
    }

    status = intent_status(_intent(latest_charge=charge), "EUR")

    assert status.state is PaymentState.AUTHORIZED
    assert status.authorized == Decimal("49.90")
    assert status.captured == 0
    assert (status.card_fingerprint, status.card_country) == ("Xt5EWLLDS7FJjR1c", "DE")
    assert status.evidence["charge"] == "ch_1"


def test_stripe_shaped_partial_capture_and_refund() -> None:
    charge = {
        "id": "ch_1",
        "status": "succeeded",
        "captured": True,
        "amount": 4990,
        "amount_captured": 4000,
        "amount_refunded": 1000,
    }

    status = intent_status(
        _intent(
            status="succeeded", amount_capturable=0, amount_received=4000, latest_charge=charge
        ),
        "EUR",
    )

    assert status.state is PaymentState.CAPTURED
    assert (status.authorized, status.captured, status.refunded) == (
        Decimal("49.90"),
        Decimal("40.00"),
        Decimal("10.00"),
    )
    assert status.refundable == Decimal("30.00")


def test_decline_after_stripe_detached_the_payment_method() -> None:
    error = {
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
        "payment_method": {"card": {"fingerprint": "fp", "country": "US"}},
    }

    status = intent_status(
        _intent(status="requires_payment_method", payment_method=None, last_payment_error=error),
        "EUR",
    )

    assert status.state is PaymentState.FAILED
    assert status.decline_code == "insufficient_funds"
    assert status.card_country == "US"
    assert status.authorized == 0


def test_status_stripe_adds_later_waits_as_pending() -> None:
    status = intent_status(_intent(status="requires_reauthorization"), "EUR")

    assert status.state is PaymentState.PENDING
    assert status.pending_reason == "requires_reauthorization"


def test_three_d_secure_is_pending_with_the_next_action() -> None:
    status = intent_status(
        _intent(status="requires_action", next_action={"type": "redirect_to_url"}), "EUR"
    )

    assert status.state is PaymentState.PENDING
    assert status.evidence["next_action"] == "redirect_to_url"


def test_an_authorisation_stripe_cancelled_is_voided() -> None:
    status = intent_status(
        _intent(status="canceled", amount_capturable=0, cancellation_reason="automatic"), "EUR"
    )

    assert status.state is PaymentState.VOIDED
    assert status.evidence["cancellation_reason"] == "automatic"


def test_intent_in_another_currency_is_refused() -> None:
    with pytest.raises(CurrencyMismatch):
        intent_status(_intent(currency="usd"), "EUR")


def test_zero_decimal_intent() -> None:
    status = intent_status(_intent(currency="jpy", amount=1200, amount_capturable=1200), "JPY")

    assert status.authorized == Decimal("1200")


@pytest.mark.parametrize(
    ("stripe_status", "expected"),
    [
        ("pending", RefundStatus.PENDING),
        ("requires_action", RefundStatus.PENDING),
        ("succeeded", RefundStatus.SUCCEEDED),
        ("failed", RefundStatus.FAILED),
        ("canceled", RefundStatus.FAILED),
        ("something_new", RefundStatus.PENDING),
    ],
)
def test_refund_statuses(stripe_status: str, expected: RefundStatus) -> None:
    refund = {"id": "re_1", "amount": 1000, "currency": "eur", "status": stripe_status}

    outcome = refund_outcome(refund, "EUR")

    assert outcome.status is expected
    assert outcome.amount == Decimal("10.00")
