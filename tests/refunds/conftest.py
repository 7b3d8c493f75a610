"""Fixtures of the refund tests: a container whose ``test`` payment provider records every
refund call (the in-memory provider would hide a doubled call behind its idempotency keys),
an order with known amounts, and helpers that take it to COMPLETED and refund it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from orderbridge.bootstrap import Container, build
from orderbridge.clock import FrozenClock
from orderbridge.db.models import Event, Job, Order, Refund
from orderbridge.demo import sample_order
from orderbridge.ids import parse_order_id
from orderbridge.payments.registry import PaymentProviders
from orderbridge.settings import Settings
from tests.conftest import Api
from tests.refunds.providers import RecordingProvider
from tests.support import databases


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider()


@pytest.fixture
async def container(
    settings: Settings, clock: FrozenClock, provider: RecordingProvider
) -> AsyncIterator[Container]:
    payments = PaymentProviders({"test": provider}, live=frozenset())
    container = build(settings, clock=clock, payments=payments)
    async with container.db.transaction() as session:
        for statement in databases.truncate_sql(container.db.dialect):
            await session.execute(text(statement))
    yield container
    await container.close()


# Known amounts (EUR). Item 1: 3 units, total 35.99, which does not divide by 3: the units
# are refunded as 12.00, 11.99 and 12.00. Item 2: 1 unit, 24.00. Shipping 9.90 + 1.98 tax.
ITEM_1_TOTAL, ITEM_2_TOTAL, SHIPPING = Decimal("35.99"), Decimal("24.00"), Decimal("11.88")
TOTAL = Decimal("71.87")


def known_order(reference: str | None = None) -> dict[str, Any]:
    payload = sample_order(random.Random(11), payment_reference=reference)
    common = {"tax_rate": "20", "duty": "0.00", "origin_country": "FR"}
    payload["items"] = [
        {
            "sku": "MUG-STONE",
            "name": "Stoneware mug",
            "quantity": 3,
            "unit_price": "10.00",
            "discount": "0.01",
            "tax": "6.00",
            "total": "35.99",
            "hs_code": "691200",
            "category": "homeware",
            **common,
        },
        {
            "sku": "BOOK-ATLAS",
            "name": "Illustrated atlas",
            "quantity": 1,
            "unit_price": "25.00",
            "discount": "5.00",
            "tax": "4.00",
            "total": "24.00",
            "hs_code": "490199",
            "category": "books",
            **common,
        },
    ]
    payload["shipping"].update(price="9.90", tax="1.98")
    payload["totals"] = {
        "items": "55.00",
        "discount": "5.01",
        "shipping": "9.90",
        "tax": "11.98",
        "duties": "0.00",
        "total": str(TOTAL),
    }
    return payload


class RefundApi:
    """The refund endpoints over the shared ``Api`` helper."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.client: httpx.AsyncClient = api.client
        self.container = api.container

    def url(self, order_id: str) -> str:
        return f"/v2/orders/{self.api.keys.store_id}/{order_id}/refunds"

    async def completed_order(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        order = await self.api.ready_order(payload or known_order())
        assert order["status"] == "READY", order
        assert (await self.api.accept(order["id"])).status_code == 200
        await self.api.run_jobs()
        order = await self.api.get(order["id"])
        assert order["status"] == "COMPLETED", order
        return order

    async def post(
        self, order_id: str, body: dict[str, Any], key: str | None = None
    ) -> httpx.Response:
        headers = dict(self.api.keys.merchant)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.client.post(self.url(order_id), json=body, headers=headers)

    async def create(
        self, order_id: str, body: dict[str, Any], key: str | None = None
    ) -> dict[str, Any]:
        response = await self.post(order_id, body, key)
        assert response.status_code == 201, response.text
        refund: dict[str, Any] = response.json()
        return refund

    async def listed(self, order_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(self.url(order_id), headers=self.api.keys.merchant)
        assert response.status_code == 200, response.text
        refunds: list[dict[str, Any]] = response.json()["refunds"]
        return refunds

    async def events(self, order_id: str) -> list[tuple[str, str | None]]:
        """(name, entity_id) of the order's refund events, in feed order."""
        page = await self.api.events(after_event_id="", limit=100)
        return [
            (e["event_name"], e["entity_id"])
            for e in page["events"]
            if e["order_id"] == order_id and e["event_name"].startswith("refund.")
        ]


@pytest.fixture
def refunds(api: Api) -> RefundApi:
    return RefundApi(api)


async def stored(container: Container, order_id: str) -> tuple[Order, list[Refund], list[str]]:
    """The order row, its refund rows and its refund event names, as stored."""
    parsed = parse_order_id(order_id)
    assert parsed is not None
    async with container.db.reader() as session:
        order = await session.get(Order, parsed[1])
        assert order is not None
        rows = await session.scalars(
            select(Refund).where(Refund.order_id == order.id).order_by(Refund.created_at)
        )
        names = await session.scalars(
            select(Event.name)
            .where(Event.order_id == order.id, Event.name.like("refund.%"))
            .order_by(Event.txid, Event.pos)
        )
        return order, list(rows), list(names)


async def run_until_quiet(container: Container, clock: FrozenClock, rounds: int = 10) -> None:
    """Run jobs, moving the frozen clock past every retry delay, until none is left."""
    for _ in range(rounds):
        await container.worker().run_until_idle()
        async with container.db.reader() as session:
            if await session.scalar(select(Job.id).limit(1)) is None:
                return
        clock.advance(hours=2)
    raise AssertionError("jobs are still left after every retry")
