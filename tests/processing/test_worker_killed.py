"""A worker killed with SIGKILL right after it moved money (a capture in ``Pipeline.run``, a
void or refund in the release job), before its transaction committed, leaves no order stuck
and doubles no capture, void or refund: once the dead worker's lease is over, the job runs
again and its effects apply once. With localstripe the provider's own record is checked;
with the ``test`` provider (whose memory dies with the process) our rows are."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from orderbridge.bootstrap import Container
from orderbridge.clock import FrozenClock
from orderbridge.db.models import Event, Job
from orderbridge.jobs.queue import JobStatus
from orderbridge.jobs.worker import Worker, WorkerOptions
from orderbridge.payments.registry import PaymentProviders
from orderbridge.payments.test_provider import TestPaymentProvider
from orderbridge.settings import Settings
from tests.integration.test_worker_crash import wait_for_locks_of_the_dead
from tests.payments.conftest import StripeCheckout
from tests.processing.conftest import (
    ProcessingApi,
    checkout_order,
    empty_container,
    stripe_providers,
)
from tests.support.concurrency import kill, spawn, wait_until
from tests.support.stalling_worker import LEASE

pytestmark = [pytest.mark.timeout(60), pytest.mark.slow]


@pytest.fixture
def provider_kind() -> str:
    return "test"  # parametrised by the tests


@pytest.fixture
async def container(
    settings: Settings, clock: FrozenClock, provider_kind: str, request: pytest.FixtureRequest
) -> AsyncIterator[Container]:
    if provider_kind == "stripe":
        payments = stripe_providers(request.getfixturevalue("localstripe_url"))
    else:
        payments = PaymentProviders({"test": TestPaymentProvider()}, live=frozenset())
    made = await empty_container(settings, clock, payments)
    yield made
    await made.close()


@pytest.fixture
async def checkout(localstripe_url: str) -> AsyncIterator[StripeCheckout]:
    made = StripeCheckout(localstripe_url)
    yield made
    await made.close()


async def killed_at(
    processing: ProcessingApi,
    clock: FrozenClock,
    tmp_path: Path,
    *,
    point: str,
    provider_kind: str,
    stripe_url: str = "",
) -> None:
    """Run the due jobs in a worker process that stalls at ``point``; SIGKILL it there;
    then run them in this process once its lease is over."""
    container = processing.container
    stalled = tmp_path / "stalled"
    child = await spawn(
        "tests.support.stalling_pipeline",
        container.settings.database_url or "",
        str(stalled),
        point,
        clock.now().isoformat(),
        provider_kind,
        stripe_url,
        settings=container.settings,
        log_dir=tmp_path,
    )
    try:

        async def stalled_or_exited() -> bool:
            return stalled.exists() or child.returncode is not None

        await wait_until(stalled_or_exited, within=30, what="the worker to stall")
        assert child.returncode is None, "the stalling worker exited on its own"
        child.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
    finally:
        kill(child)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.wait(), 10)
    await wait_for_locks_of_the_dead(container)
    async with container.db.reader() as session:
        running = (await session.scalars(select(Job.status))).all()
    assert JobStatus.RUNNING in running  # the dead worker's job, under its lease

    worker = Worker(container.db, clock, container.handlers, WorkerOptions(lease=LEASE))
    assert await worker.run_until_idle() == 0  # the lease still holds: left alone
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert await worker.run_until_idle() >= 1


async def event_names(processing: ProcessingApi, order_id: str) -> list[str]:
    row = await processing.row(order_id)
    async with processing.container.db.reader() as session:
        names = await session.scalars(
            select(Event.name).where(Event.order_id == row.id).order_by(Event.txid, Event.pos)
        )
        return list(names)


async def stripe_payload(checkout: StripeCheckout) -> tuple[dict[str, Any], str, Decimal]:
    payload = checkout_order("pi_", provider="stripe")
    total = Decimal(payload["totals"]["total"])
    payload["payment"]["reference"] = reference = await checkout.authorized(total, "EUR")
    return payload, reference, total


@pytest.mark.parametrize("provider_kind", ["test"])
async def test_killed_after_the_capture_the_order_becomes_ready_once(
    processing: ProcessingApi, clock: FrozenClock, tmp_path: Path, provider_kind: str
) -> None:
    order = await processing.api.new_order(checkout_order("pay_ok_killed"))
    await killed_at(processing, clock, tmp_path, point="after-capture", provider_kind="test")

    ready = await processing.api.get(order["id"])
    assert ready["status"] == "READY"
    assert ready["payment"]["captured"] == ready["totals"]["total"]
    assert [r.outcome for r in await processing.step_rows(order["id"], "capture")] == ["pass"]
    assert await event_names(processing, order["id"]) == ["order.received", "order.ready"]
    assert await processing.jobs(order["id"]) == []


@pytest.mark.parametrize("provider_kind", ["stripe"])
async def test_killed_after_the_stripe_capture_the_payment_is_captured_once(
    processing: ProcessingApi,
    clock: FrozenClock,
    tmp_path: Path,
    checkout: StripeCheckout,
    localstripe_url: str,
    provider_kind: str,
) -> None:
    payload, reference, total = await stripe_payload(checkout)
    order = await processing.api.new_order(payload)
    await killed_at(
        processing,
        clock,
        tmp_path,
        point="after-capture",
        provider_kind="stripe",
        stripe_url=localstripe_url,
    )

    ready = await processing.api.get(order["id"])
    assert (ready["status"], ready["payment"]["captured"]) == ("READY", payload["totals"]["total"])
    record = await checkout.record(reference, "EUR")
    assert (record.provider_status, record.captured, record.refunds) == ("succeeded", total, 0)
    assert [r.outcome for r in await processing.step_rows(order["id"], "capture")] == ["pass"]
    assert await event_names(processing, order["id"]) == ["order.received", "order.ready"]
    assert await processing.jobs(order["id"]) == []


@pytest.mark.parametrize("provider_kind", ["stripe"])
@pytest.mark.parametrize("cancelled_from", ["READY", "RECEIVED"])
async def test_killed_after_the_release_the_money_goes_back_once(
    processing: ProcessingApi,
    clock: FrozenClock,
    tmp_path: Path,
    checkout: StripeCheckout,
    localstripe_url: str,
    provider_kind: str,
    cancelled_from: str,
) -> None:
    payload, reference, total = await stripe_payload(checkout)
    order = await processing.api.new_order(payload)
    if cancelled_from == "READY":
        await processing.api.run_jobs()
        assert (await processing.api.get(order["id"]))["status"] == "READY"
    assert (await processing.api.cancel(order["id"])).status_code == 200
    await killed_at(
        processing,
        clock,
        tmp_path,
        point="after-release",
        provider_kind="stripe",
        stripe_url=localstripe_url,
    )

    cancelled = await processing.api.get(order["id"])
    assert cancelled["status"] == "CANCELLED"
    record = await checkout.record(reference, "EUR")
    if cancelled_from == "READY":
        assert (record.provider_status, record.refunds, record.refunded) == (
            "succeeded",
            1,
            total,
        )
    else:
        assert (record.provider_status, record.captured, record.refunds) == ("canceled", 0, 0)
    [release] = await processing.releases(order["id"])
    assert release.status == "succeeded"
    names = await event_names(processing, order["id"])
    assert names.count("order.cancelled") == 1
    assert names.count("refund.completed") <= 1
    assert await processing.jobs(order["id"]) == []

    expected = "refund" if cancelled_from == "READY" else "void"
    assert release.operation == expected
    if cancelled_from == "READY":
        assert cancelled["payment"]["refunded"] == payload["totals"]["total"]
        assert names.count("refund.completed") == 1
