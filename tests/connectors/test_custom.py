"""The custom endpoint connector beyond the shared contract: the documented wire protocol
(body, signature, stable ``webhook-id``, find by GET) and how refusals map."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from orderbridge.connectors.custom import CustomEndpointConnector, order_body
from orderbridge.connectors.port import (
    ConnectionSettings,
    PushRejected,
    PushRetryable,
    RejectionCode,
)
from orderbridge.outbound.signing import MalformedSecret, generate_secret
from tests.connectors.orders import push_order
from tests.connectors.platforms import custom

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def endpoint() -> AsyncIterator[custom.CustomEndpointFake]:
    async with custom.start() as fake:
        fake.add_product("TSHIRT-RED-M", stock=10, price=Decimal("25.00"))
        fake.add_product("MUG-BLUE", stock=10, price=Decimal("12.50"))
        yield fake


def connector_for(fake: custom.CustomEndpointFake) -> CustomEndpointConnector:
    settings = dataclasses.replace(fake.settings(), timeout=0.5, connect_timeout=0.5)
    return CustomEndpointConnector(settings)


async def test_the_order_is_posted_as_documented_json_with_amounts_as_strings(
    endpoint: custom.CustomEndpointFake,
) -> None:
    order = push_order()
    connector = connector_for(endpoint)
    try:
        await connector.create_order(order)
    finally:
        await connector.aclose()

    [body] = endpoint.bodies
    assert body == order_body(order)
    assert body["order_id"] == order.order_id
    assert body["totals"]["total"] == str(order.totals.total)
    assert isinstance(body["items"][0]["unit_price"], str)


async def test_a_retried_push_carries_the_same_webhook_id_and_gets_the_same_order(
    endpoint: custom.CustomEndpointFake,
) -> None:
    order = push_order()
    connector = connector_for(endpoint)
    try:
        first = await connector.create_order(order)
        again = await connector.create_order(order)
    finally:
        await connector.aclose()

    posts = [r for r in endpoint.requests if r.method == "POST"]
    assert {r.headers["webhook-id"] for r in posts} == {f"push_{order.order_id}"}
    assert first == again
    assert len(endpoint.orders) == 1


async def test_find_is_a_signed_get_with_our_order_id(endpoint: custom.CustomEndpointFake) -> None:
    connector = connector_for(endpoint)
    try:
        assert await connector.find_order("310678-1") is None
    finally:
        await connector.aclose()

    [get] = [r for r in endpoint.requests if r.method == "GET"]
    assert get.query == {"order_id": "310678-1"}
    assert get.headers["webhook-signature"].startswith("v1,")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            409,
            {"code": "out_of_stock", "detail": "gone", "skus": ["A"]},
            RejectionCode.OUT_OF_STOCK,
        ),
        (422, {"code": "invalid_address"}, RejectionCode.INVALID_ADDRESS),
        (422, {"code": "something_of_theirs"}, RejectionCode.REJECTED),
        (422, "not json", RejectionCode.REJECTED),
        (401, {}, RejectionCode.AUTH_FAILED),
        (403, {}, RejectionCode.PERMISSION_DENIED),
    ],
)
async def test_refusals_map_to_rejection_codes(
    status: int, body: object, expected: RejectionCode
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    connector = CustomEndpointConnector(_settings(), transport=httpx.MockTransport(answer))
    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(push_order())
    assert rejected.value.code is expected


async def test_429_is_retryable_after_the_retry_after_header() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "7"})

    connector = CustomEndpointConnector(_settings(), transport=httpx.MockTransport(answer))
    with pytest.raises(PushRetryable) as retry:
        await connector.create_order(push_order())
    assert retry.value.retry_after == 7


async def test_a_404_without_json_on_find_says_the_url_is_wrong() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="<html>Not Found</html>")

    connector = CustomEndpointConnector(_settings(), transport=httpx.MockTransport(answer))
    with pytest.raises(PushRejected) as rejected:
        await connector.find_order("310678-1")
    assert rejected.value.code is RejectionCode.NOT_FOUND
    check = await connector.test_connection()
    assert (check.ok, check.code) == (False, RejectionCode.NOT_FOUND)


def test_a_malformed_signing_secret_is_refused_when_built() -> None:
    with pytest.raises(MalformedSecret):
        CustomEndpointConnector(_settings(secret="not-a-secret"))


def _settings(secret: str | None = None) -> ConnectionSettings:
    return ConnectionSettings(
        platform="custom",
        base_url="https://merchant.example/orders",
        credentials={"signing_secret": secret or generate_secret()},
    )
