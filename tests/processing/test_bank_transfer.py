"""Deferred payments (bank transfer): the order waits for a confirmation until the store's
deadline; a confirmation through the API is recorded once and lets the order become READY
(no capture: the money arrived); no confirmation by the deadline cancels it with
``payment_failed``."""

from __future__ import annotations

import pytest

from orderbridge.clock import FrozenClock
from tests.processing.conftest import CountingProvider, ProcessingApi, checkout_order

pytestmark = pytest.mark.timeout(30)


def bank_transfer(reference: str = "BT-2026-0001") -> dict[str, object]:
    return checkout_order(reference, method="bank_transfer")


async def test_bank_transfer_waits_then_a_confirmation_makes_it_ready(
    processing: ProcessingApi, provider: CountingProvider, clock: FrozenClock
) -> None:
    order = await processing.processed(bank_transfer())
    assert order["status"] == "RECEIVED"
    [waiting] = [e for e in await processing.timeline(order["id"]) if e["step"] == "payment"]
    assert (waiting["outcome"], waiting["summary"]) == (
        "wait",
        "waiting for the bank_transfer to arrive",
    )
    clock.advance(hours=30)
    await processing.api.run_jobs()  # nothing is due before the 72-hour deadline
    assert (await processing.api.get(order["id"]))["status"] == "RECEIVED"

    total = order["totals"]["total"]
    first = await processing.confirm(order["id"], total, reference="SEPA-77")
    assert first.status_code == 201, first.text
    assert first.json()["amount"] == total
    assert first.json()["source"] == f"merchant:{processing.keys.merchant_key_id}"
    repeat = await processing.confirm(order["id"], total, reference="SEPA-77")
    assert (repeat.status_code, repeat.json()) == (200, first.json())
    assert repeat.headers["Idempotent-Replayed"] == "true"
    other = await processing.confirm(order["id"], total, reference="SEPA-78")
    assert (other.status_code, other.json()["code"]) == (409, "payment_already_confirmed")

    await processing.api.run_jobs()
    ready = await processing.api.get(order["id"])
    assert ready["status"] == "READY"
    assert ready["payment"]["captured"] == total
    assert ready["payment"]["status"] == "captured"
    assert provider.calls["capture"] == 0  # a transfer arrives captured
    assert await processing.steps(order["id"]) == [
        ("payment", "wait"),
        ("payment_confirmation", "received"),
        ("payment", "pass"),
        ("prohibited_goods", "pass"),
        ("fraud", "pass"),
    ]
    [confirmation] = [
        e for e in await processing.timeline(order["id"]) if e["step"] == "payment_confirmation"
    ]
    assert confirmation["actor"] == "merchant"
    assert confirmation["evidence"]["reference"] == "SEPA-77"


async def test_bank_transfer_not_confirmed_by_the_deadline_is_cancelled(
    processing: ProcessingApi, clock: FrozenClock
) -> None:
    order = await processing.processed(bank_transfer())
    clock.advance(hours=72)
    await processing.api.run_jobs()

    cancelled = await processing.api.get(order["id"])
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["cancellation"]["reason"] == "payment_failed"
    assert "no payment received by the deadline" in cancelled["cancellation"]["note"]
    late = await processing.confirm(order["id"], order["totals"]["total"])
    assert (late.status_code, late.json()["code"]) == (409, "order_not_awaiting_payment")


async def test_a_transfer_short_of_the_total_cancels_the_order_for_a_manual_refund(
    processing: ProcessingApi,
) -> None:
    order = await processing.processed(bank_transfer())
    response = await processing.confirm(order["id"], "1.00")
    assert response.status_code == 201, response.text
    await processing.api.run_jobs()

    cancelled = await processing.api.get(order["id"])
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["cancellation"]["reason"] == "payment_failed"
    [release] = await processing.releases(order["id"])
    assert release.operation == "manual"  # a transfer is sent back by hand


@pytest.mark.parametrize(
    ("amount", "field_or_code"),
    [("49.999", "amount"), ("0", "amount"), ("-1", "amount"), ("abc", "amount")],
)
async def test_confirmation_amount_is_validated(
    processing: ProcessingApi, amount: str, field_or_code: str
) -> None:
    order = await processing.processed(bank_transfer())
    response = await processing.confirm(order["id"], amount)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field_or_code]


async def test_a_card_order_cannot_be_confirmed_by_hand(processing: ProcessingApi) -> None:
    order = await processing.api.new_order(checkout_order("pay_ok_card"))
    response = await processing.confirm(order["id"], order["totals"]["total"])
    assert (response.status_code, response.json()["code"]) == (409, "payment_not_deferred")
