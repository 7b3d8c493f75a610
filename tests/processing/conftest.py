"""Fixtures of the processing tests: a container whose ``test`` payment provider counts the
calls made to it (so a test can say "exactly one capture"), checkout orders shaped for each
scenario, and the API calls of processing (configuration, reviews, confirmations)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from orderbridge.bootstrap import Container, build
from orderbridge.clock import FrozenClock
from orderbridge.db.models import Job, Order, OrderStep, Refund
from orderbridge.demo import sample_order
from orderbridge.ids import parse_order_id
from orderbridge.payments.port import PaymentProvider, PaymentStatus, RefundOutcome
from orderbridge.payments.registry import (
    PaymentProviders,
    PaymentsConfig,
    build_payment_providers,
)
from orderbridge.payments.stripe_provider import StripeConfig
from orderbridge.payments.test_provider import TestPaymentProvider
from orderbridge.settings import Settings
from tests.conftest import Api, StoreKeys
from tests.support import databases
from tests.support.localstripe import API_KEY, start_localstripe

GERMANY = {
    "first_name": "Lukas",
    "last_name": "Schmidt",
    "line1": "Invalidenstraße 5",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}
FRANCE = {
    "first_name": "Camille",
    "last_name": "Durand",
    "line1": "12 rue Oberkampf",
    "city": "Paris",
    "postal_code": "75011",
    "country": "FR",
}


class CountingProvider:
    """A payment provider that counts the calls made to the one it wraps."""

    def __init__(self, inner: PaymentProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: Counter[str] = Counter()

    async def status(self, reference: str, *, amount: Decimal, currency: str) -> PaymentStatus:
        self.calls["status"] += 1
        return await self.inner.status(reference, amount=amount, currency=currency)

    async def capture(
        self, reference: str, *, amount: Decimal, currency: str, idempotency_key: str
    ) -> PaymentStatus:
        self.calls["capture"] += 1
        return await self.inner.capture(
            reference, amount=amount, currency=currency, idempotency_key=idempotency_key
        )

    async def void(self, reference: str, *, currency: str, idempotency_key: str) -> PaymentStatus:
        self.calls["void"] += 1
        return await self.inner.void(reference, currency=currency, idempotency_key=idempotency_key)

    async def refund(
        self, reference: str, *, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundOutcome:
        self.calls["refund"] += 1
        return await self.inner.refund(
            reference, amount=amount, currency=currency, idempotency_key=idempotency_key
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def provider() -> CountingProvider:
    return CountingProvider(TestPaymentProvider())


async def empty_container(
    settings: Settings, clock: FrozenClock, payments: PaymentProviders
) -> Container:
    """A container with these payment providers on a database emptied of every row."""
    made = build(settings, clock=clock, payments=payments)
    async with made.db.transaction() as session:
        for statement in databases.truncate_sql(made.db.dialect):
            await session.execute(text(statement))
    return made


def stripe_providers(url: str) -> PaymentProviders:
    return build_payment_providers(
        PaymentsConfig(
            enabled=("stripe",),
            stripe=StripeConfig(api_key=API_KEY, api_base=url, max_network_retries=0),
        )
    )


@pytest.fixture
async def container(
    settings: Settings, clock: FrozenClock, provider: CountingProvider
) -> AsyncIterator[Container]:
    payments = PaymentProviders({"test": provider}, live=frozenset())
    made = await empty_container(settings, clock, payments)
    yield made
    await made.close()


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    server = start_localstripe(timeout=20)
    try:
        yield server.url
    finally:
        server.stop()


_orders = iter(range(1, 1_000_000))


def checkout_order(
    reference: str | None = None,
    *,
    method: str = "card",
    provider: str = "test",
    destination: dict[str, str] | None = GERMANY,
    hs_code: str | None = None,
    categories: str | None = None,
    email: str | None = None,
) -> dict[str, Any]:
    """A valid checkout order of a French store's buyer. Each has its own email and IP, so
    that fraud velocity rules stay quiet unless a test wants them; it ships to Germany
    (cross-border: prohibited goods are screened) unless ``destination`` is None (the
    sample's own address)."""
    n = next(_orders)
    order = sample_order(random.Random(n), items=2)
    if destination is not None:
        order["shipping_address"] = order["billing_address"] = dict(destination)
    order["customer"]["email"] = email or f"buyer{n}@example.com"
    order["client"]["ip"] = f"198.51.{n // 250 % 250}.{n % 250 + 1}"
    order["payment"] = {
        "method": method,
        "provider": provider,
        "reference": reference or f"pay_ok_{n}",
    }
    if hs_code is not None:
        order["items"][0]["hs_code"] = hs_code
    if categories is not None:
        for item in order["items"]:
            item["category"] = categories
    return order


class ProcessingApi:
    """The processing endpoints and what the tests look at, over ``Api``."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.client: httpx.AsyncClient = api.client
        self.keys: StoreKeys = api.keys
        self.container: Container = api.container

    @property
    def store_id(self) -> str:
        return self.keys.store_id

    async def get_config(self) -> httpx.Response:
        return await self.client.get(
            f"/v2/stores/{self.store_id}/processing", headers=self.keys.merchant
        )

    async def put_config(self, document: Any) -> httpx.Response:
        return await self.client.put(
            f"/v2/stores/{self.store_id}/processing", json=document, headers=self.keys.merchant
        )

    async def configure(self, document: dict[str, Any]) -> int:
        response = await self.put_config(document)
        assert response.status_code == 200, response.text
        version: int = response.json()["version"]
        return version

    async def reviews(self) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v2/reviews/{self.store_id}", headers=self.keys.merchant)
        assert response.status_code == 200, response.text
        reviews: list[dict[str, Any]] = response.json()["reviews"]
        return reviews

    async def decide(self, order_id: str, decision: str, note: str | None = None) -> httpx.Response:
        return await self.client.post(
            f"/v2/reviews/{self.store_id}/{order_id}/{decision}",
            json={"note": note} if note else None,
            headers=self.keys.merchant,
        )

    async def confirm(
        self, order_id: str, amount: str, reference: str | None = "bank-ref-1"
    ) -> httpx.Response:
        return await self.client.post(
            f"/v2/payments/{self.store_id}/{order_id}/confirm",
            json={"amount": amount, "reference": reference},
            headers=self.keys.merchant,
        )

    async def timeline(self, order_id: str) -> list[dict[str, Any]]:
        response = await self.client.get(
            f"/v2/orders/{self.store_id}/{order_id}/timeline", headers=self.keys.merchant
        )
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries

    async def steps(self, order_id: str) -> list[tuple[str, str]]:
        """(step, outcome) of the order's timeline, in order."""
        return [(e["step"], e["outcome"]) for e in await self.timeline(order_id) if e["step"]]

    async def processed(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Submit, run the worker until idle, return the order as the API shows it."""
        return await self.api.ready_order(payload)

    # ---- storage ------------------------------------------------------------------------

    async def row(self, order_id: str) -> Order:
        parsed = parse_order_id(order_id)
        assert parsed is not None
        async with self.container.db.reader() as session:
            order = await session.get(Order, parsed[1])
            assert order is not None
            return order

    async def jobs(self, order_id: str) -> list[Job]:
        order = await self.row(order_id)
        async with self.container.db.reader() as session:
            return list((await session.scalars(select(Job).where(Job.order_id == order.id))).all())

    async def releases(self, order_id: str) -> list[Refund]:
        order = await self.row(order_id)
        async with self.container.db.reader() as session:
            rows = await session.scalars(select(Refund).where(Refund.order_id == order.id))
            return list(rows.all())

    async def step_rows(self, order_id: str, step: str) -> list[OrderStep]:
        order = await self.row(order_id)
        async with self.container.db.reader() as session:
            rows = await session.scalars(
                select(OrderStep)
                .where(OrderStep.order_id == order.id, OrderStep.step == step)
                .order_by(OrderStep.id)
            )
            return list(rows.all())


@pytest.fixture
def processing(api: Api) -> ProcessingApi:
    return ProcessingApi(api)
