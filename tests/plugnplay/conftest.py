"""Fixtures of the plug & play tests: a merchant's custom endpoint (the fake of
tests.connectors.platforms.custom, on loopback in the test's loop) that knows every SKU of
the orders the tests submit, and helpers over the connection and push endpoints."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from orderbridge.bootstrap import Container
from orderbridge.db.models import Job
from orderbridge.demo import sample_order
from tests.conftest import Api
from tests.connectors.platforms import custom


@pytest.fixture
async def endpoint() -> AsyncIterator[custom.CustomEndpointFake]:
    async with custom.start() as fake:
        yield fake


class PlugAndPlay:
    """The plug & play endpoints over the shared ``Api`` helper."""

    def __init__(self, api: Api, endpoint: custom.CustomEndpointFake) -> None:
        self.api = api
        self.client: httpx.AsyncClient = api.client
        self.container: Container = api.container
        self.endpoint = endpoint
        self.store_id = api.keys.store_id
        self._rng = random.Random(5)

    @property
    def headers(self) -> dict[str, str]:
        return self.api.keys.merchant

    def connection_body(self, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "platform": "custom",
            "base_url": self.endpoint.base_url,
            "credentials": {"signing_secret": self.endpoint.secret},
            "timeout": 1,
        }
        body.update(changes)
        return body

    async def put_connection(self, **changes: Any) -> httpx.Response:
        return await self.client.put(
            f"/v2/connections/{self.store_id}",
            json=self.connection_body(**changes),
            headers=self.headers,
        )

    async def connect(self, **changes: Any) -> dict[str, Any]:
        response = await self.put_connection(**changes)
        assert response.status_code in (200, 201), response.text
        connection: dict[str, Any] = response.json()
        return connection

    def payload(self, *, stocked: bool = True) -> dict[str, Any]:
        """A checkout order; with ``stocked`` the endpoint sells every one of its SKUs."""
        payload = sample_order(self._rng)
        if stocked:
            for item in payload["items"]:
                self.endpoint.add_product(item["sku"], stock=100, price=Decimal(1))
        return payload

    async def ready(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Submit an order and run the jobs once (processing, then the push's first try)."""
        order = await self.api.new_order(payload or self.payload())
        await self.api.run_jobs()
        return await self.api.get(order["id"])

    async def log(self, order_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/v2/orders/{self.store_id}/{order_id}/push", headers=self.headers
        )
        assert response.status_code == 200, response.text
        log: dict[str, Any] = response.json()
        return log

    async def retry(self, order_id: str) -> httpx.Response:
        return await self.client.post(
            f"/v2/orders/{self.store_id}/{order_id}/push", headers=self.headers
        )

    async def event_names(self, order_id: str) -> list[str]:
        page = await self.api.events(after_event_id="", limit=100)
        return [e["event_name"] for e in page["events"] if e["order_id"] == order_id]

    async def push_jobs(self) -> list[Job]:
        async with self.container.db.reader() as session:
            rows = await session.scalars(select(Job).where(Job.kind == "order.push"))
            return list(rows)


@pytest.fixture
def pnp(api: Api, endpoint: custom.CustomEndpointFake) -> PlugAndPlay:
    return PlugAndPlay(api, endpoint)
