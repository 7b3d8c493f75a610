"""Shared fixtures. Every test that touches storage runs on SQLite and on PostgreSQL
(``backend`` is parametrised); see tests/support/databases.py for how PostgreSQL is found."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from orderbridge.api.app import create_app
from orderbridge.bootstrap import Container, build
from orderbridge.clock import FrozenClock
from orderbridge.demo import sample_order
from orderbridge.settings import Settings, WorkerMode
from orderbridge.stores import service as stores
from tests.support import databases

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def _postgres_url() -> Iterator[str]:
    databases.require_postgres()
    url = databases.migrated_postgres()
    yield url
    databases.drop_postgres_database(url)


@pytest.fixture(scope="session")
def _sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return databases.migrated_sqlite(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """A migrated, empty database of each backend."""
    name = "_postgres_url" if request.param == "postgresql" else "_sqlite_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        worker_mode=WorkerMode.OFF,
        auth_cache_seconds=0,
        db_pool_size=8,
        outbound_allow_private=True,  # receivers in tests listen on loopback
        secret_keys="test-key",
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
async def container(settings: Settings, clock: FrozenClock) -> AsyncIterator[Container]:
    container = build(settings, clock=clock)
    async with container.db.transaction() as session:
        for statement in databases.truncate_sql(container.db.dialect):
            await session.execute(text(statement))
    yield container
    await container.close()


@dataclass
class StoreKeys:
    store_id: str
    merchant_key: str
    checkout_key: str
    merchant_key_id: str

    @property
    def merchant(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.merchant_key}"}

    @property
    def checkout(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.checkout_key}"}


async def create_store_with_keys(container: Container, name: str = "Shop") -> StoreKeys:
    now = container.clock.now()
    async with container.db.transaction() as session:
        store = await stores.create_store(session, name=name, currency="EUR", country="FR", now=now)
        merchant = await stores.issue_key(
            session, store_id=store.id, kind=stores.KeyKind.MERCHANT, now=now
        )
        checkout = await stores.issue_key(
            session, store_id=store.id, kind=stores.KeyKind.CHECKOUT, now=now
        )
    return StoreKeys(store.id, merchant.secret, checkout.secret, merchant.key.id)


@pytest.fixture
async def store(container: Container) -> StoreKeys:
    return await create_store_with_keys(container)


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(container, manage_container=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)


@pytest.fixture
def order_payload(rng: random.Random) -> dict[str, Any]:
    return sample_order(rng)


class Api:
    """Thin helpers over the HTTP API, so that tests read like an integration would."""

    def __init__(self, client: httpx.AsyncClient, container: Container, keys: StoreKeys) -> None:
        self.client = client
        self.container = container
        self.keys = keys
        self._counter = 0

    async def submit(self, payload: dict[str, Any], key: str | None = None) -> httpx.Response:
        self._counter += 1
        return await self.client.post(
            f"/v2/checkout/{self.keys.store_id}/orders",
            json=payload,
            headers={**self.keys.checkout, "Idempotency-Key": key or f"k-{self._counter}"},
        )

    async def new_order(self, payload: dict[str, Any]) -> dict[str, Any]:
        response = await self.submit(payload)
        assert response.status_code == 201, response.text
        order: dict[str, Any] = response.json()
        return order

    async def ready_order(self, payload: dict[str, Any]) -> dict[str, Any]:
        order = await self.new_order(payload)
        await self.run_jobs()
        return await self.get(order["id"])

    async def get(self, order_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/v2/orders/{self.keys.store_id}/{order_id}", headers=self.keys.merchant
        )
        assert response.status_code == 200, response.text
        order: dict[str, Any] = response.json()
        return order

    async def accept(
        self, order_id: str, ext_id: str = "92", number: str = "00092"
    ) -> httpx.Response:
        return await self.client.post(
            f"/v2/orders/{self.keys.store_id}/{order_id}/accept",
            json={"external": {"order_id": ext_id, "order_number": number}},
            headers=self.keys.merchant,
        )

    async def cancel(self, order_id: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return await self.client.post(
            f"/v2/orders/{self.keys.store_id}/{order_id}/cancel",
            json=body if body is not None else {},
            headers=self.keys.merchant,
        )

    async def events(self, **params: Any) -> dict[str, Any]:
        response = await self.client.get(
            f"/v2/events/{self.keys.store_id}", params=params, headers=self.keys.merchant
        )
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    async def run_jobs(self) -> int:
        return await self.container.worker().run_until_idle()


@pytest.fixture
def api(client: httpx.AsyncClient, container: Container, store: StoreKeys) -> Api:
    return Api(client, container, store)
