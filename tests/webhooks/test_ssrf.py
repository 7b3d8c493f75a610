"""Under the production outbound policy (no private targets) the API refuses endpoint URLs
that point inside, and the dispatcher never connects to an endpoint whose name resolves
inside: the attempt is logged as failed and no byte is sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from orderbridge.api.app import create_app
from orderbridge.bootstrap import Container, build
from orderbridge.clock import FrozenClock
from orderbridge.settings import Settings
from orderbridge.webhooks.dispatcher import DispatcherOptions
from tests.conftest import Api, StoreKeys
from tests.webhooks.helpers import FAST, attempts, create_endpoint, only_delivery, receive_orders
from tests.webhooks.receiver import receiver

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def strict(settings: Settings, clock: FrozenClock) -> AsyncIterator[Container]:
    """A second container on the same database with the production outbound policy."""
    container = build(settings.model_copy(update={"outbound_allow_private": False}), clock=clock)
    yield container
    await container.close()


@pytest.fixture
async def strict_api(strict: Container, store: StoreKeys) -> AsyncIterator[Api]:
    app = create_app(strict, manage_container=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(client, strict, store)


INSIDE = [
    ("https://127.0.0.1/hooks", "target_not_public"),
    ("https://10.1.2.3/hooks", "target_not_public"),
    ("https://169.254.169.254/latest/meta-data", "target_not_public"),
    ("https://[::1]:8443/hooks", "target_not_public"),
    ("https://[::ffff:127.0.0.1]/hooks", "target_not_public"),
    ("https://0x7f000001/hooks", "target_not_public"),
    ("http://shop.example/hooks", "scheme_not_allowed"),
    ("https://user:pw@shop.example/hooks", "credentials_in_url"),
]


def assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == "validation_error"
    assert [(e["field"], e["code"]) for e in body["errors"]] == [("url", code)]


@pytest.mark.parametrize(("url", "code"), INSIDE)
async def test_an_endpoint_url_pointing_inside_is_refused(
    strict_api: Api, url: str, code: str
) -> None:
    created = await strict_api.client.post(
        f"/v2/webhooks/{strict_api.keys.store_id}",
        json={"url": url},
        headers=strict_api.keys.merchant,
    )
    assert_refused(created, code)


async def test_changing_an_endpoint_url_to_an_inside_address_is_refused(strict_api: Api) -> None:
    endpoint = await create_endpoint(strict_api, "https://shop.example/hooks")
    path = f"/v2/webhooks/{strict_api.keys.store_id}/{endpoint['id']}"
    changed = await strict_api.client.patch(
        path, json={"url": "https://192.168.0.1/hooks"}, headers=strict_api.keys.merchant
    )
    assert_refused(changed, "target_not_public")
    kept = await strict_api.client.get(path, headers=strict_api.keys.merchant)
    assert kept.json()["url"] == "https://shop.example/hooks"


async def listen_on_loopback() -> tuple[int, list[int], list[asyncio.Server]]:
    """A port open on 127.0.0.1 (and ::1 when possible) that counts connections."""
    accepted: list[int] = []

    async def count(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    first = await asyncio.start_server(count, "127.0.0.1", 0)
    port = first.sockets[0].getsockname()[1]
    servers = [first]
    with contextlib.suppress(OSError):
        servers.append(await asyncio.start_server(count, "::1", port))
    return port, accepted, servers


async def test_a_name_resolving_to_loopback_is_never_connected_to(
    strict_api: Api, strict: Container
) -> None:
    port, accepted, servers = await listen_on_loopback()
    try:
        # A name passes the API's check (no DNS there); the resolver judges it when sending.
        endpoint = await create_endpoint(strict_api, f"https://localhost:{port}/hooks")
        await receive_orders(strict, strict_api.keys.store_id, 1)
        sender = strict.dispatcher(DispatcherOptions(**FAST))
        assert await sender.run_until_idle() == 1
    finally:
        for server in servers:
            server.close()

    assert accepted == []
    delivery = await only_delivery(strict, endpoint["id"])
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    [attempt] = await attempts(strict, delivery.id)
    assert attempt.status_code is None
    assert attempt.error is not None and "target_not_public" in attempt.error


async def test_an_inside_url_stored_earlier_is_refused_when_sending(
    api: Api, strict: Container
) -> None:
    async with receiver() as hooks:
        # Stored while private targets were allowed (a development setting, since turned off).
        endpoint = await create_endpoint(api, hooks.url)
        await receive_orders(strict, api.keys.store_id, 1)
        assert await strict.dispatcher(DispatcherOptions(**FAST)).run_until_idle() == 1

    assert hooks.requests == []
    [attempt] = await attempts(strict, (await only_delivery(strict, endpoint["id"])).id)
    assert attempt.status_code is None
    assert attempt.error is not None and "only https" in attempt.error
