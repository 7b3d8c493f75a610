"""The pipeline with the Stripe provider against localstripe: the test plays the checkout
(it creates and confirms a manual-capture PaymentIntent with the SDK), submits the order
through the API and runs the worker; then it reads localstripe's own record of the money."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from orderbridge.bootstrap import Container
from orderbridge.clock import FrozenClock
from orderbridge.settings import Settings
from tests.payments.conftest import StripeCheckout
from tests.processing.conftest import (
    ProcessingApi,
    checkout_order,
    empty_container,
    stripe_providers,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def container(
    settings: Settings, clock: FrozenClock, localstripe_url: str
) -> AsyncIterator[Container]:
    made = await empty_container(settings, clock, stripe_providers(localstripe_url))
    yield made
    await made.close()


@pytest.fixture
async def checkout(localstripe_url: str) -> AsyncIterator[StripeCheckout]:
    made = StripeCheckout(localstripe_url)
    yield made
    await made.close()


async def test_authorised_card_becomes_ready_with_exactly_one_capture(
    processing: ProcessingApi, checkout: StripeCheckout
) -> None:
    payload = checkout_order("pi_", provider="stripe")
    total = Decimal(payload["totals"]["total"])
    payload["payment"]["reference"] = reference = await checkout.authorized(total, "EUR")

    order = await processing.processed(payload)
    assert order["status"] == "READY"
    assert order["payment"]["captured"] == payload["totals"]["total"]
    record = await checkout.record(reference, "EUR")
    assert (record.provider_status, record.captured, record.refunds) == ("succeeded", total, 0)
    [payment] = [e for e in await processing.timeline(order["id"]) if e["step"] == "payment"]
    assert payment["evidence"]["payment_intent"] == reference
    assert payment["evidence"]["stripe_status"] == "requires_capture"
    assert await processing.steps(order["id"]) == [
        ("payment", "pass"),
        ("prohibited_goods", "pass"),
        ("fraud", "pass"),
        ("capture", "pass"),
    ]

    # A merchant cancel of the READY order gives the whole capture back, once.
    for _ in range(2):
        assert (await processing.api.cancel(order["id"])).status_code == 200
        await processing.api.run_jobs()
    record = await checkout.record(reference, "EUR")
    assert (record.refunds, record.refunded) == (1, total)
    cancelled = await processing.api.get(order["id"])
    assert cancelled["payment"]["refunded"] == payload["totals"]["total"]
    [release] = await processing.releases(order["id"])
    assert (release.operation, release.status, release.amount) == ("refund", "succeeded", total)


async def test_declined_card_is_cancelled_payment_failed(
    processing: ProcessingApi, checkout: StripeCheckout
) -> None:
    payload = checkout_order("pi_", provider="stripe")
    total = Decimal(payload["totals"]["total"])
    payload["payment"]["reference"] = reference = await checkout.declined(total, "EUR")

    order = await processing.processed(payload)
    assert order["status"] == "CANCELLED"
    assert order["cancellation"]["reason"] == "payment_failed"
    [payment] = [e for e in await processing.timeline(order["id"]) if e["step"] == "payment"]
    assert payment["outcome"] == "fail"
    assert payment["evidence"]["stripe_status"] == "requires_payment_method"
    assert payment["evidence"].get("decline_code")
    record = await checkout.record(reference, "EUR")
    assert (record.captured, record.refunds) == (Decimal(0), 0)


async def test_cancel_of_a_received_authorised_order_voids_it(
    processing: ProcessingApi, checkout: StripeCheckout
) -> None:
    payload = checkout_order("pi_", provider="stripe")
    total = Decimal(payload["totals"]["total"])
    payload["payment"]["reference"] = reference = await checkout.authorized(total, "EUR")
    order = await processing.api.new_order(payload)

    assert (await processing.api.cancel(order["id"])).status_code == 200
    await processing.api.run_jobs()
    record = await checkout.record(reference, "EUR")
    assert (record.provider_status, record.captured, record.refunds) == ("canceled", 0, 0)
    [release] = await processing.releases(order["id"])
    assert (release.operation, release.status) == ("void", "succeeded")


async def test_an_unfinished_3ds_challenge_waits_then_fails_at_the_deadline(
    processing: ProcessingApi, checkout: StripeCheckout, clock: FrozenClock
) -> None:
    payload = checkout_order("pi_", provider="stripe")
    total = Decimal(payload["totals"]["total"])
    payload["payment"]["reference"] = await checkout.requires_action(total, "EUR")

    order = await processing.processed(payload)
    assert order["status"] == "RECEIVED"
    [waiting] = [e for e in await processing.timeline(order["id"]) if e["step"] == "payment"]
    assert (waiting["outcome"], waiting["evidence"]["stripe_status"]) == (
        "wait",
        "requires_action",
    )
    clock.advance(minutes=31)
    await processing.api.run_jobs()
    cancelled = await processing.api.get(order["id"])
    assert (cancelled["status"], cancelled["cancellation"]["reason"]) == (
        "CANCELLED",
        "payment_failed",
    )
