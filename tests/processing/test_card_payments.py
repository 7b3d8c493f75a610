"""Card orders through the API and the worker, on the ``test`` provider: authorised orders
become READY with exactly one capture, declines and abandoned 3-D Secure challenges end
CANCELLED ``payment_failed``, and every step's outcome is on the timeline."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from orderbridge.clock import FrozenClock
from orderbridge.jobs.queue import JobStatus
from tests.processing.conftest import (
    FRANCE,
    GERMANY,
    CountingProvider,
    ProcessingApi,
    checkout_order,
)

pytestmark = pytest.mark.timeout(30)


def seconds_between(earlier: datetime, later: datetime) -> float:
    # SQLite hands back naive UTC datetimes.
    return (later.replace(tzinfo=None) - earlier.replace(tzinfo=None)).total_seconds()


@pytest.mark.parametrize(
    ("reference", "destination", "steps"),
    [
        ("pay_cross_border", GERMANY, ["payment", "prohibited_goods", "fraud", "capture"]),
        ("pay_domestic", FRANCE, ["payment", "fraud", "capture"]),
        ("pay_3ds_ok_done", GERMANY, ["payment", "prohibited_goods", "fraud", "capture"]),
    ],
)
async def test_authorised_card_order_becomes_ready_with_exactly_one_capture(
    processing: ProcessingApi,
    provider: CountingProvider,
    reference: str,
    destination: dict[str, str],
    steps: list[str],
) -> None:
    payload = checkout_order(reference, destination=destination)
    order = await processing.processed(payload)

    assert order["status"] == "READY"
    total = order["totals"]["total"]
    assert order["payment"]["captured"] == total
    assert order["payment"]["authorized"] == total
    assert order["payment"]["status"] == "captured"
    assert provider.calls["capture"] == 1
    assert await processing.steps(order["id"]) == [(step, "pass") for step in steps]
    [capture] = [e for e in await processing.timeline(order["id"]) if e["step"] == "capture"]
    assert capture["evidence"]["captured"] == total
    assert capture["actor"] == "system"
    # The order's processing ran under the built-in configuration, recorded as version 0.
    assert (await processing.row(order["id"])).processing_version == 0
    assert await processing.jobs(order["id"]) == []


async def test_timeline_merges_steps_and_status_changes_in_time_order(
    processing: ProcessingApi, clock: FrozenClock
) -> None:
    order = await processing.api.new_order(checkout_order("pay_3ds_later"))
    clock.advance(seconds=5)
    await processing.api.run_jobs()  # waits for the buyer's 3-D Secure challenge
    clock.advance(minutes=31)
    await processing.api.run_jobs()

    entries = await processing.timeline(order["id"])
    shape = [(e["kind"], e["event_name"] or f"{e['step']}:{e['outcome']}") for e in entries]
    assert shape == [
        ("status_changed", "order.received"),
        ("step", "payment:wait"),
        ("step", "payment:fail"),
        ("status_changed", "order.cancelled"),
    ]
    times = [e["at"] for e in entries]
    assert times == sorted(times)


@pytest.mark.parametrize(
    ("reference", "decline_code"),
    [
        ("pay_decline", "card_declined"),
        ("pay_decline_insufficient_funds", "insufficient_funds"),
        ("pay_decline_expired_card", "expired_card"),
    ],
)
async def test_declined_card_is_cancelled_payment_failed_with_the_decline_code(
    processing: ProcessingApi, provider: CountingProvider, reference: str, decline_code: str
) -> None:
    order = await processing.processed(checkout_order(reference))

    assert order["status"] == "CANCELLED"
    assert order["cancellation"]["reason"] == "payment_failed"
    assert order["cancellation"]["by"] == "system"
    assert decline_code in order["cancellation"]["note"]
    [payment] = [e for e in await processing.timeline(order["id"]) if e["step"] == "payment"]
    assert payment["outcome"] == "fail"
    assert payment["reason"] == "payment_failed"
    assert payment["evidence"]["decline_code"] == decline_code
    assert payment["evidence"]["state"] == "failed"
    # Nothing was held: the release moves no money.
    assert provider.calls["capture"] == provider.calls["void"] == provider.calls["refund"] == 0
    [release] = await processing.releases(order["id"])
    assert (release.operation, release.status) == ("none", "succeeded")


async def test_unfinished_3ds_waits_then_is_cancelled_at_the_deadline(
    processing: ProcessingApi, provider: CountingProvider, clock: FrozenClock
) -> None:
    order = await processing.api.new_order(checkout_order("pay_3ds_abandoned"))
    start = clock.now()
    await processing.api.run_jobs()

    assert (await processing.api.get(order["id"]))["status"] == "RECEIVED"
    [job] = await processing.jobs(order["id"])
    assert job.status == JobStatus.QUEUED
    assert 0 < seconds_between(start, job.run_at) <= 30  # asked again soon, not at once
    [waiting] = [e for e in await processing.timeline(order["id"]) if e["step"] == "payment"]
    assert waiting["outcome"] == "wait"
    assert "waiting for the buyer" in waiting["summary"]
    assert "requires_action" in waiting["summary"]
    assert waiting["evidence"]["deadline"]

    # Asked again every 30 s until the 30-minute deadline; one timeline entry for the wait.
    for _ in range(3):
        clock.advance(seconds=31)
        await processing.api.run_jobs()
    assert (await processing.api.get(order["id"]))["status"] == "RECEIVED"
    assert await processing.steps(order["id"]) == [("payment", "wait")]

    clock.advance(minutes=30)
    await processing.api.run_jobs()
    cancelled = await processing.api.get(order["id"])
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["cancellation"]["reason"] == "payment_failed"
    assert await processing.steps(order["id"]) == [("payment", "wait"), ("payment", "fail")]
    assert await processing.jobs(order["id"]) == []
    assert provider.calls["capture"] == 0
    [release] = await processing.releases(order["id"])
    assert release.operation == "void"  # the pending payment is closed at the provider


async def test_merchant_cancel_of_a_ready_order_refunds_the_capture_once(
    processing: ProcessingApi, provider: CountingProvider
) -> None:
    order = await processing.processed(checkout_order("pay_ok_refund"))
    assert order["status"] == "READY"

    for _ in range(2):
        response = await processing.api.cancel(order["id"])
        assert response.status_code == 200, response.text
        await processing.api.run_jobs()

    cancelled = await processing.api.get(order["id"])
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["payment"]["refunded"] == order["totals"]["total"]
    assert provider.calls["refund"] == 1
    [release] = await processing.releases(order["id"])
    assert (release.operation, release.status) == ("refund", "succeeded")
    assert release.amount == Decimal(order["totals"]["total"])


async def test_merchant_cancel_of_a_received_authorised_order_voids_it(
    processing: ProcessingApi, provider: CountingProvider
) -> None:
    order = await processing.api.new_order(checkout_order("pay_ok_void"))
    assert (await processing.api.cancel(order["id"])).status_code == 200
    await processing.api.run_jobs()

    assert provider.calls["capture"] == 0
    assert provider.calls["void"] == 1
    [release] = await processing.releases(order["id"])
    assert (release.operation, release.status) == ("void", "succeeded")
    # The pipeline's job found the order cancelled and did nothing.
    assert await processing.steps(order["id"]) == []
