"""The worker runs the ``order.process`` jobs of one claim as a batch, in one transaction
(``Pipeline.run_many``): every order ends as it would alone, the fraud step's velocity
counts see the card facts that the payment step found for the orders before it in the
batch, and an order that fails the batch leaves the others' work intact (the batch runs
again one by one)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from orderbridge.clock import FrozenClock
from orderbridge.db.models import Event, Job, WebhookDelivery
from orderbridge.jobs.queue import JobStatus
from orderbridge.jobs.worker import WorkerOptions
from orderbridge.payments.port import PaymentStatus
from orderbridge.payments.test_provider import TestPaymentProvider
from orderbridge.webhooks.schemas import EndpointCreate
from tests.processing.conftest import CountingProvider, ProcessingApi, checkout_order

pytestmark = pytest.mark.timeout(30)

ALL_STEPS = [
    ("payment", "pass"),
    ("prohibited_goods", "pass"),
    ("fraud", "pass"),
    ("capture", "pass"),
]


class OneCardProvider(TestPaymentProvider):
    """The test provider, every payment made with one and the same card."""

    __test__ = False

    async def status(self, reference: str, *, amount: Decimal, currency: str) -> PaymentStatus:
        status = await super().status(reference, amount=amount, currency=currency)
        return dataclasses.replace(status, card_fingerprint="fp_shared_card")


@pytest.fixture
def provider(request: pytest.FixtureRequest) -> CountingProvider:
    shared = "shared_card" in request.node.name
    return CountingProvider(OneCardProvider() if shared else TestPaymentProvider())


async def _submitted(processing: ProcessingApi, payloads: list[dict[str, Any]]) -> list[str]:
    return [(await processing.api.new_order(payload))["id"] for payload in payloads]


async def _ready_event_transactions(processing: ProcessingApi) -> set[int]:
    async with processing.container.db.reader() as session:
        rows = await session.scalars(select(Event.txid).where(Event.name == "order.ready"))
        return set(rows.all())


async def test_orders_of_one_batch_go_ready_in_one_transaction_each_captured_once(
    processing: ProcessingApi, provider: CountingProvider
) -> None:
    ids = await _submitted(processing, [checkout_order() for _ in range(5)])

    assert await processing.api.run_jobs() == 5
    for order_id in ids:
        order = await processing.api.get(order_id)
        assert order["status"] == "READY"
        assert await processing.steps(order_id) == ALL_STEPS
        assert (await processing.row(order_id)).processing_version == 0
    assert provider.calls["capture"] == 5
    assert len(await _ready_event_transactions(processing)) == 1


async def test_events_of_a_batch_keep_their_order_and_their_deliveries_point_at_them(
    processing: ProcessingApi,
) -> None:
    container = processing.container
    async with container.db.transaction() as session:
        await container.webhooks.create_endpoint(
            session, processing.store_id, EndpointCreate(url="https://hooks.example.com/in")
        )
    # Five: a sixth to the same address in a day would be held for review.
    await _submitted(processing, [checkout_order() for _ in range(5)])

    await processing.api.run_jobs()
    async with container.db.reader() as session:
        ready = (
            await session.execute(
                select(Event.id, Event.pos, Event.order_id)
                .where(Event.name == "order.ready")
                .order_by(Event.id)
            )
        ).all()
        deliveries = (
            await session.execute(
                select(WebhookDelivery.event_id, WebhookDelivery.order_id).where(
                    WebhookDelivery.event_name == "order.ready"
                )
            )
        ).all()
    assert len(ready) == 5
    assert [row.pos for row in ready] == sorted(row.pos for row in ready)
    assert [row.order_id for row in ready] == sorted(row.order_id for row in ready)
    by_id = {row.id: row.order_id for row in ready}
    assert sorted((by_id[d.event_id], d.order_id) for d in deliveries) == [
        (row.order_id, row.order_id) for row in ready
    ]


async def test_card_velocity_in_a_batch_counts_the_orders_before_it_on_the_shared_card(
    processing: ProcessingApi, clock: FrozenClock
) -> None:
    # Two orders an hour per card; a third is held for review.
    await processing.configure(
        {
            "fraud": {
                "rules": {
                    "review_score": 50,
                    "reject_score": 500,
                    "velocity": [{"dimension": "card", "window": "PT1H", "limit": 2, "points": 60}],
                }
            }
        }
    )
    ids = []
    for _ in range(4):
        ids += await _submitted(processing, [checkout_order()])
        clock.advance(seconds=1)  # each order after the one before

    await processing.api.run_jobs()
    assert len(await _ready_event_transactions(processing)) == 1
    statuses = [(await processing.api.get(order_id))["status"] for order_id in ids]
    assert statuses == ["READY", "READY", "RECEIVED", "RECEIVED"]
    for review in await processing.reviews():
        assert "velocity.card.1h" in [hit["rule"] for hit in review["hits"]]


async def test_an_order_failing_in_a_batch_is_retried_alone_and_the_others_go_ready(
    processing: ProcessingApi, provider: CountingProvider
) -> None:
    payloads = [checkout_order() for _ in range(4)]
    payloads[1] = checkout_order("pay_unavailable_batch")
    ids = await _submitted(processing, payloads)

    worker = processing.container.worker(WorkerOptions(batch_size=10))
    await worker.run_until_idle()
    statuses = [(await processing.api.get(order_id))["status"] for order_id in ids]
    assert statuses == ["READY", "RECEIVED", "READY", "READY"]
    for order_id in (ids[0], ids[2], ids[3]):
        assert await processing.steps(order_id) == ALL_STEPS
    [job] = await processing.jobs(ids[1])
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 1)
    assert "ProviderUnavailable" in (job.last_error or "")
    assert await processing.steps(ids[1]) == []
    async with processing.container.db.reader() as session:
        assert (await session.scalars(select(Job.order_id))).all() == [job.order_id]
