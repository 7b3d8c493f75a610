"""The data the browser tests start from, made the way an operator and a checkout would:
stores and keys through the store use cases, orders submitted over HTTP with the checkout
key and moved along by the service's own worker."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from orderbridge.accounts import service as accounts
from orderbridge.bootstrap import Container
from orderbridge.demo import sample_order
from orderbridge.stores import service as stores

WAIT_SECONDS = 30.0
PASSWORD = "browser test password"


@dataclass(frozen=True)
class SeededStore:
    store_id: str
    name: str
    merchant_key: str
    checkout_key: str


async def store_with_keys(container: Container, name: str) -> SeededStore:
    now = container.clock.now()
    async with container.db.transaction() as session:
        store = await stores.create_store(session, name=name, currency="EUR", country="FR", now=now)
        merchant = await stores.issue_key(
            session, store_id=store.id, kind=stores.KeyKind.MERCHANT, now=now, label="seed"
        )
        checkout = await stores.issue_key(
            session, store_id=store.id, kind=stores.KeyKind.CHECKOUT, now=now, label="seed"
        )
    return SeededStore(store.id, name, merchant.secret, checkout.secret)


@dataclass(frozen=True)
class SeededUser:
    email: str
    password: str
    store_id: str
    role: str


async def user(
    container: Container, email: str, store: SeededStore, role: accounts.Role
) -> SeededUser:
    """A Merchant Account user of one store (the use case behind ``orderbridge users
    create``), in Paris time so that the pages show local times."""
    now = container.clock.now()
    async with container.db.transaction() as session:
        created = await accounts.create_user(
            session,
            email=email,
            password=PASSWORD,
            now=now,
            name=email.split("@")[0].title(),
            time_zone="Europe/Paris",
        )
        await accounts.add_membership(
            session, user=created, store_id=store.store_id, role=role, now=now
        )
    return SeededUser(email, PASSWORD, store.store_id, role.value)


class Orders:
    """Orders of the running service, through its public API."""

    def __init__(self, base_url: str, rng: random.Random) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, timeout=10)
        self.rng = rng
        self._submitted = 0

    async def close(self) -> None:
        await self.client.aclose()

    async def submit(
        self, store: SeededStore, *, first_name: str | None = None, last_name: str | None = None
    ) -> dict[str, Any]:
        payload = sample_order(self.rng)
        if first_name and last_name:
            customer = payload["customer"]
            customer["first_name"], customer["last_name"] = first_name, last_name
            customer["email"] = f"{first_name}.{last_name}@example.com".lower()
        self._submitted += 1
        response = await self.client.post(
            f"/v2/checkout/{store.store_id}/orders",
            json=payload,
            headers={
                "Authorization": f"Bearer {store.checkout_key}",
                "Idempotency-Key": f"browser-{self._submitted}-{self.rng.getrandbits(32)}",
            },
        )
        assert response.status_code == 201, response.text
        order: dict[str, Any] = response.json()
        return order

    async def get(self, store: SeededStore, order_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/v2/orders/{store.store_id}/{order_id}",
            headers={"Authorization": f"Bearer {store.merchant_key}"},
        )
        assert response.status_code == 200, response.text
        order: dict[str, Any] = response.json()
        return order

    async def wait_until(
        self, store: SeededStore, order_id: str, condition: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            order = await self.get(store, order_id)
            if condition(order):
                return order
            if time.monotonic() > deadline:
                raise AssertionError(f"order {order_id} never got there: {order}")
            await asyncio.sleep(0.1)

    async def wait_for(self, store: SeededStore, order_id: str, status: str) -> dict[str, Any]:
        return await self.wait_until(store, order_id, lambda order: order["status"] == status)

    async def ready(self, store: SeededStore, **customer: str) -> dict[str, Any]:
        order = await self.submit(store, **customer)
        return await self.wait_for(store, order["id"], "READY")

    async def completed(self, store: SeededStore, **customer: str) -> dict[str, Any]:
        """A completed (so refundable) order: accepted through the API, finalised by the
        worker."""
        order = await self.ready(store, **customer)
        response = await self.client.post(
            f"/v2/orders/{store.store_id}/{order['id']}/accept",
            json={"external": {"order_id": f"ext-{order['id']}", "order_number": "10001"}},
            headers={"Authorization": f"Bearer {store.merchant_key}"},
        )
        assert response.status_code == 200, response.text
        return await self.wait_for(store, order["id"], "COMPLETED")
