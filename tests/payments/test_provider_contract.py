"""The payment-provider contract (orderbridge.payments.port): every provider passes these,
run once per provider by the ``checkout`` fixture (tests/payments/conftest.py). A new
provider joins by adding a ``Checkout`` for it there."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderbridge.money import ZERO
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
from tests.payments.conftest import Checkout

pytestmark = [
    pytest.mark.timeout(30),
    # stripe-python's HTTPXClient posts its form body with httpx's deprecated ``data=<str>``.
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
]

EUR = "EUR"
TOTAL = Decimal("49.90")


async def test_authorised_payment_reports_the_amount_and_card(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)

    status = await checkout.provider.status(reference, amount=TOTAL, currency=EUR)

    assert status.state is PaymentState.AUTHORIZED
    assert (status.authorized, status.captured, status.refunded) == (TOTAL, ZERO, ZERO)
    assert status.currency == EUR
    assert status.card_fingerprint
    assert status.card_country
    assert status.decline_code is None


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(Decimal("1200"), "JPY"), (Decimal("12.340"), "KWD"), (Decimal("0.01"), "EUR")],
)
async def test_amounts_keep_their_value_in_every_currency(
    checkout: Checkout, amount: Decimal, currency: str
) -> None:
    reference = await checkout.authorized(amount, currency)

    captured = await checkout.provider.capture(
        reference, amount=amount, currency=currency, idempotency_key="cap-1"
    )

    assert captured.authorized == amount
    assert captured.captured == amount
    assert str(captured.captured) == str(amount)


async def test_capture_takes_the_authorised_amount(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)

    status = await checkout.provider.capture(
        reference, amount=TOTAL, currency=EUR, idempotency_key="job-1:capture"
    )

    assert status.state is PaymentState.CAPTURED
    assert status.captured == TOTAL
    assert (await checkout.record(reference, EUR)).captured == TOTAL


async def test_capture_repeated_with_the_same_key_captures_once(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)
    first = await checkout.provider.capture(
        reference, amount=TOTAL, currency=EUR, idempotency_key="job-1:capture"
    )

    again = await checkout.provider.capture(
        reference, amount=TOTAL, currency=EUR, idempotency_key="job-1:capture"
    )

    assert again.state is PaymentState.CAPTURED
    assert again.captured == first.captured == TOTAL
    record = await checkout.record(reference, EUR)
    assert record.captured == TOTAL
    assert record.refunded == 0


async def test_capture_of_a_captured_payment_with_a_new_key_moves_no_money(
    checkout: Checkout,
) -> None:
    # A retry after the provider forgot the key (Stripe keeps keys 24 hours).
    reference = await checkout.authorized(TOTAL, EUR)
    await checkout.provider.capture(reference, amount=TOTAL, currency=EUR, idempotency_key="k1")

    again = await checkout.provider.capture(
        reference, amount=TOTAL, currency=EUR, idempotency_key="k2"
    )

    assert again.captured == TOTAL
    assert (await checkout.record(reference, EUR)).captured == TOTAL


async def test_capture_above_the_authorised_amount_is_refused(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)

    with pytest.raises(PaymentRejected) as refused:
        await checkout.provider.capture(
            reference, amount=TOTAL + 1, currency=EUR, idempotency_key="k1"
        )

    assert not refused.value.retryable
    status = await checkout.provider.status(reference, amount=TOTAL, currency=EUR)
    assert status.state is PaymentState.AUTHORIZED


async def test_partial_capture_takes_only_the_amount_asked(checkout: Checkout) -> None:
    if not checkout.reports_partial_capture:
        pytest.skip("localstripe books the released rest of a partial capture as a refund")
    reference = await checkout.authorized(TOTAL, EUR)

    status = await checkout.provider.capture(
        reference, amount=Decimal("40.00"), currency=EUR, idempotency_key="k1"
    )

    assert status.captured == Decimal("40.00")
    assert status.refundable == Decimal("40.00")


async def test_void_releases_an_authorisation(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)

    voided = await checkout.provider.void(reference, currency=EUR, idempotency_key="job-2:void")

    assert voided.state is PaymentState.VOIDED
    assert voided.captured == 0
    status = await checkout.provider.status(reference, amount=TOTAL, currency=EUR)
    assert status.state is PaymentState.VOIDED


async def test_void_repeated_returns_the_voided_payment(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)
    await checkout.provider.void(reference, currency=EUR, idempotency_key="job-2:void")

    same_key = await checkout.provider.void(reference, currency=EUR, idempotency_key="job-2:void")
    new_key = await checkout.provider.void(reference, currency=EUR, idempotency_key="other")

    assert same_key.state is new_key.state is PaymentState.VOIDED


async def test_void_of_a_captured_payment_is_refused(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)
    await checkout.provider.capture(reference, amount=TOTAL, currency=EUR, idempotency_key="k1")

    with pytest.raises(PaymentStateConflict):
        await checkout.provider.void(reference, currency=EUR, idempotency_key="k2")

    assert (await checkout.record(reference, EUR)).captured == TOTAL


async def test_capture_of_a_voided_payment_is_refused(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)
    await checkout.provider.void(reference, currency=EUR, idempotency_key="k1")

    with pytest.raises(PaymentStateConflict):
        await checkout.provider.capture(reference, amount=TOTAL, currency=EUR, idempotency_key="k2")


async def test_partial_refunds_add_up(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)
    await checkout.provider.capture(reference, amount=TOTAL, currency=EUR, idempotency_key="c")

    first = await checkout.provider.refund(
        reference, amount=Decimal("10.00"), currency=EUR, idempotency_key="refund-1"
    )
    second = await checkout.provider.refund(
        reference, amount=Decimal("15.50"), currency=EUR, idempotency_key="refund-2"
    )

    assert first.refund_id != second.refund_id
    assert (first.amount, second.amount) == (Decimal("10.00"), Decimal("15.50"))
    assert first.status is second.status is RefundStatus.SUCCEEDED
    status = await checkout.provider.status(reference, amount=TOTAL, currency=EUR)
    assert status.refunded == Decimal("25.50")
    assert status.refundable == Decimal("24.40")
    record = await checkout.record(reference, EUR)
    assert (record.refunds, record.refunded) == (2, Decimal("25.50"))


async def test_refund_repeated_with_the_same_key_is_one_refund(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)
    await checkout.provider.capture(reference, amount=TOTAL, currency=EUR, idempotency_key="c")
    first = await checkout.provider.refund(
        reference, amount=Decimal("10.00"), currency=EUR, idempotency_key="refund-1"
    )

    again = await checkout.provider.refund(
        reference, amount=Decimal("10.00"), currency=EUR, idempotency_key="refund-1"
    )

    assert again.refund_id == first.refund_id
    record = await checkout.record(reference, EUR)
    assert (record.refunds, record.refunded) == (1, Decimal("10.00"))


async def test_refund_above_what_is_left_is_refused(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)
    await checkout.provider.capture(reference, amount=TOTAL, currency=EUR, idempotency_key="c")
    await checkout.provider.refund(
        reference, amount=Decimal("40.00"), currency=EUR, idempotency_key="r1"
    )

    with pytest.raises(RefundExceedsCaptured) as refused:
        await checkout.provider.refund(
            reference, amount=Decimal("9.91"), currency=EUR, idempotency_key="r2"
        )
    rest = await checkout.provider.refund(
        reference, amount=Decimal("9.90"), currency=EUR, idempotency_key="r3"
    )

    assert refused.value.code == "refund_exceeds_captured"
    assert not refused.value.retryable
    assert rest.amount == Decimal("9.90")
    record = await checkout.record(reference, EUR)
    assert (record.refunds, record.refunded) == (2, TOTAL)


async def test_refund_of_an_uncaptured_payment_is_refused(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)

    with pytest.raises(PaymentStateConflict):
        await checkout.provider.refund(
            reference, amount=Decimal("1.00"), currency=EUR, idempotency_key="r1"
        )

    assert (await checkout.record(reference, EUR)).refunds == 0


async def test_declined_card_fails_with_a_decline_code(checkout: Checkout) -> None:
    reference = await checkout.declined(TOTAL, EUR)

    status = await checkout.provider.status(reference, amount=TOTAL, currency=EUR)

    assert status.state is PaymentState.FAILED
    assert status.decline_code == "card_declined"
    assert status.decline_message
    assert (status.authorized, status.captured) == (ZERO, ZERO)


async def test_capture_of_a_declined_payment_is_refused(checkout: Checkout) -> None:
    reference = await checkout.declined(TOTAL, EUR)

    with pytest.raises(PaymentStateConflict):
        await checkout.provider.capture(reference, amount=TOTAL, currency=EUR, idempotency_key="k1")


async def test_3ds_challenge_not_completed_is_pending(checkout: Checkout) -> None:
    reference = await checkout.requires_action(TOTAL, EUR)

    status = await checkout.provider.status(reference, amount=TOTAL, currency=EUR)

    assert status.state is PaymentState.PENDING
    assert status.pending_reason == "requires_action"
    assert status.authorized == 0


async def test_3ds_challenge_completed_is_authorised(checkout: Checkout) -> None:
    reference = await checkout.authenticated(TOTAL, EUR)

    status = await checkout.provider.status(reference, amount=TOTAL, currency=EUR)

    assert status.state is PaymentState.AUTHORIZED
    assert status.authorized == TOTAL


async def test_void_of_a_pending_payment_closes_it(checkout: Checkout) -> None:
    reference = await checkout.requires_action(TOTAL, EUR)

    voided = await checkout.provider.void(reference, currency=EUR, idempotency_key="k1")

    assert voided.state is PaymentState.VOIDED


async def test_payment_in_another_currency_is_refused(checkout: Checkout) -> None:
    reference = await checkout.authorized(TOTAL, EUR)

    with pytest.raises(CurrencyMismatch):
        await checkout.provider.status(reference, amount=TOTAL, currency="USD")
    with pytest.raises(CurrencyMismatch):
        await checkout.provider.capture(
            reference, amount=TOTAL, currency="USD", idempotency_key="k1"
        )


async def test_unreachable_provider_is_retryable(checkout: Checkout) -> None:
    provider, reference = checkout.unreachable()

    with pytest.raises(ProviderUnavailable) as unavailable:
        await provider.status(reference, amount=TOTAL, currency=EUR)
    with pytest.raises(ProviderUnavailable):
        await provider.capture(reference, amount=TOTAL, currency=EUR, idempotency_key="k1")

    assert unavailable.value.retryable


async def test_unknown_reference_is_not_found(checkout: Checkout) -> None:
    reference = "pay_notfound" if checkout.name == "test" else "pi_doesnotexist000"

    with pytest.raises(PaymentNotFound):
        await checkout.provider.status(reference, amount=TOTAL, currency=EUR)
