"""Magento 2 beyond the contract: the one-request order save and its fields, the admin
token's life, stock deduction, and how Magento's messages become rejection codes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from orderbridge.clock import FrozenClock
from orderbridge.connectors.connections import ConnectionService
from orderbridge.connectors.magento import MagentoConnector
from orderbridge.connectors.pool import ConnectorPool
from orderbridge.connectors.port import ConnectionSettings, PushRejected, RejectionCode
from orderbridge.connectors.registry import default_registry
from orderbridge.connectors.schemas import ConnectionIn
from orderbridge.crypto import SecretBox
from orderbridge.errors import ValidationFailed
from orderbridge.outbound.guard import OutboundPolicy
from tests.connectors.orders import push_order
from tests.connectors.platforms import magento
from tests.connectors.platforms.magento import INTEGRATION_TOKEN, FakeMagento

pytestmark = pytest.mark.timeout(30)

SHIRT, MUG = "TSHIRT-RED-M", "MUG-BLUE"


@pytest.fixture
async def fake() -> AsyncIterator[FakeMagento]:
    async with magento.start() as running:
        running.add_product(SHIRT, stock=10, price=Decimal("25.00"))
        running.add_product(MUG, stock=10, price=Decimal("12.50"))
        yield running


@pytest.fixture
async def connector(fake: FakeMagento) -> AsyncIterator[MagentoConnector]:
    built = MagentoConnector(fake.settings())
    yield built
    await built.aclose()


def order_saves(fake: FakeMagento) -> list[dict[str, object]]:
    return [
        r.json["entity"] for r in fake.requests if r.method == "POST" and r.path.endswith("/orders")
    ]


async def test_order_is_saved_in_one_request_carrying_our_id_and_the_pushed_amounts(
    fake: FakeMagento, connector: MagentoConnector
) -> None:
    order = push_order(currency="EUR")

    await connector.create_order(order)

    [entity] = order_saves(fake)
    assert entity["ext_order_id"] == order.order_id
    assert entity["order_currency_code"] == "EUR"
    assert Decimal(str(entity["grand_total"])) == order.totals.total
    assert Decimal(str(entity["discount_amount"])) == -order.totals.discount
    assert Decimal(str(entity["tax_amount"])) == order.totals.tax
    assert entity["customer_is_guest"] == 1
    shipping = entity["extension_attributes"]["shipping_assignments"][0]["shipping"]  # type: ignore[index]
    assert shipping["method"] == "flatrate_flatrate"
    assert shipping["address"]["street"] == ["12 rue de la Paix", "3e étage"]
    assert entity["status_histories"][0]["comment"].startswith(order.note)  # type: ignore[index]


async def test_options_choose_store_view_payment_and_shipping_method(fake: FakeMagento) -> None:
    settings = ConnectionSettings(
        platform="magento",
        base_url=fake.base_url + "/rest",
        credentials=fake.settings().credentials,
        options={"store_code": "fr", "payment_method": "banktransfer", "shipping_method": "ups_11"},
    )
    connector = MagentoConnector(settings)
    try:
        await connector.create_order(push_order())
    finally:
        await connector.aclose()

    [save] = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/orders")]
    assert save.path == "/rest/fr/V1/orders"
    entity = save.json["entity"]
    assert entity["payment"]["method"] == "banktransfer"
    assert (
        entity["extension_attributes"]["shipping_assignments"][0]["shipping"]["method"] == "ups_11"
    )


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        ("camille.durand@example.fr", {"customer_id": 41, "customer_group_id": 3,
                                       "customer_is_guest": 0}),
        ("new.buyer@example.fr", {"customer_is_guest": 1}),
    ],
    ids=["known-customer", "unknown-email"],
)  # fmt: skip
async def test_customer_mode_email_joins_the_account_with_the_buyers_email(
    fake: FakeMagento, email: str, expected: dict[str, int]
) -> None:
    fake.customers.append({"id": 41, "group_id": 3, "email": "Camille.Durand@example.fr"})
    settings = dataclasses.replace(fake.settings(), options={"customer_mode": "email"})
    connector = MagentoConnector(settings)
    try:
        await connector.create_order(push_order(email=email))
    finally:
        await connector.aclose()

    [entity] = order_saves(fake)
    assert {key: entity.get(key) for key in expected} == expected
    if "customer_id" not in expected:
        assert "customer_id" not in entity


async def test_stock_is_deducted_after_the_order_is_saved(
    fake: FakeMagento, connector: MagentoConnector
) -> None:
    created = await connector.create_order(push_order())

    assert fake.stock_items[SHIRT]["qty"] == 8
    assert fake.stock_items[MUG]["qty"] == 9
    assert created.details["stock"] == f"deducted {SHIRT}-2, {MUG}-1"


async def test_admin_token_is_fetched_once_and_again_after_magento_revokes_it(
    fake: FakeMagento, connector: MagentoConnector
) -> None:
    await connector.create_order(push_order(lines=[(MUG, 1)]))
    fake.tokens = {INTEGRATION_TOKEN}  # the admin token expired (4 h) or was revoked

    await connector.create_order(push_order(lines=[(MUG, 1)]))

    logins = [r for r in fake.requests if r.path.endswith("/integration/admin/token")]
    assert len(logins) == 2
    assert len(fake.orders) == 2


async def test_integration_access_token_is_sent_as_bearer_without_logging_in(
    fake: FakeMagento,
) -> None:
    settings = ConnectionSettings(
        platform="magento", base_url=fake.base_url, credentials={"access_token": INTEGRATION_TOKEN}
    )
    connector = MagentoConnector(settings)
    try:
        assert (await connector.test_connection()).ok
        await connector.create_order(push_order())
    finally:
        await connector.aclose()

    assert not [r for r in fake.requests if r.path.endswith("/integration/admin/token")]
    assert {r.headers["Authorization"] for r in fake.requests} == {f"Bearer {INTEGRATION_TOKEN}"}


async def test_revoked_integration_token_is_auth_failed_without_a_retry_loop(
    fake: FakeMagento,
) -> None:
    settings = ConnectionSettings(
        platform="magento", base_url=fake.base_url, credentials={"access_token": "revoked"}
    )
    connector = MagentoConnector(settings)
    try:
        with pytest.raises(PushRejected) as rejected:
            await connector.create_order(push_order())
    finally:
        await connector.aclose()

    assert rejected.value.code is RejectionCode.AUTH_FAILED
    assert "Magento_Sales::actions_view" in rejected.value.detail
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (400, {"message": "The requested qty is not available"}, RejectionCode.OUT_OF_STOCK),
        (
            400,
            {"message": '"%fieldName" is required. Enter and try again.',
             "parameters": {"fieldName": "postcode"}},
            RejectionCode.INVALID_ADDRESS,
        ),
        (
            400,
            {"message": "Carrier with such method not found: %1, %2",
             "parameters": ["ups", "11"]},
            RejectionCode.SHIPPING_UNAVAILABLE,
        ),
        (404, {"message": "Request does not match any route."}, RejectionCode.NOT_FOUND),
        (400, {"message": "Something else"}, RejectionCode.REJECTED),
    ],
)  # fmt: skip
async def test_magento_messages_become_rejection_codes(
    status: int, body: dict[str, object], code: RejectionCode
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/orders") and request.method == "POST":
            return httpx.Response(status, content=json.dumps(body))
        if "/stockItems/" in request.url.path:
            return httpx.Response(200, json={"item_id": 1, "qty": 100, "is_in_stock": True})
        if request.url.path.endswith("/products"):
            skus = request.url.params["searchCriteria[filter_groups][0][filters][0][value]"].split(
                ","
            )
            return httpx.Response(200, json={"items": [{"id": 1, "sku": sku} for sku in skus]})
        return httpx.Response(500)

    settings = ConnectionSettings(
        platform="magento", base_url="http://shop.test", credentials={"access_token": "t"}
    )
    connector = MagentoConnector(settings, transport=httpx.MockTransport(answer))
    try:
        with pytest.raises(PushRejected) as rejected:
            await connector.create_order(push_order())
    finally:
        await connector.aclose()

    assert rejected.value.code is code
    assert rejected.value.platform_code == str(status)
    assert "%" not in rejected.value.detail  # placeholders filled from parameters


@pytest.mark.parametrize(
    "credentials",
    [{"access_token": "t"}, {"username": "admin", "password": "pw"}],
    ids=["integration-token", "admin-user"],
)
async def test_a_connection_needs_a_token_or_a_user_and_password_not_both(
    credentials: dict[str, str],
) -> None:
    policy = OutboundPolicy()
    registry = default_registry()
    service = ConnectionService(
        FrozenClock(), SecretBox(["k"]), policy, registry, ConnectorPool(registry, policy)
    )
    spec = ConnectionIn(platform="magento", base_url="https://shop.example.com")

    await service._check(spec, credentials)  # accepted
    with pytest.raises(ValidationFailed) as refused:
        await service._check(spec, {"username": "admin"})

    assert [error.code for error in refused.value.errors] == ["invalid"]
    assert "access_token" in refused.value.errors[0].message


async def test_increment_id_is_read_back_when_the_save_does_not_return_it() -> None:
    saved = {"entity_id": 7, "increment_id": "000000007", "state": "processing"}

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/orders") and request.method == "POST":
            return httpx.Response(200, json={"entity_id": 7})
        if path.endswith("/orders/7"):
            return httpx.Response(200, json=saved)
        if "/stockItems/" in path:
            return httpx.Response(200, json={"item_id": 1, "qty": 100, "is_in_stock": True})
        if path.endswith("/products"):
            skus = request.url.params["searchCriteria[filter_groups][0][filters][0][value]"].split(
                ","
            )
            return httpx.Response(200, json={"items": [{"id": 1, "sku": sku} for sku in skus]})
        return httpx.Response(200, json=1)  # the stock deductions

    settings = ConnectionSettings(
        platform="magento", base_url="http://shop.test", credentials={"access_token": "t"}
    )
    connector = MagentoConnector(settings, transport=httpx.MockTransport(answer))
    try:
        created = await connector.create_order(push_order())
    finally:
        await connector.aclose()

    assert (created.id, created.number) == ("7", "000000007")


async def test_a_configurable_parent_sku_is_refused_before_anything_is_written(
    fake: FakeMagento, connector: MagentoConnector
) -> None:
    fake.add_product("TSHIRT", stock=0, price=Decimal("25.00"))
    fake.product_types["TSHIRT"] = "configurable"

    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(push_order(lines=[("TSHIRT", 1)]))

    assert rejected.value.code is RejectionCode.PRODUCT_NOT_FOUND
    assert rejected.value.skus == ("TSHIRT",)
    assert fake.orders == []


async def test_two_factor_auth_on_admin_users_is_auth_failed_with_magentos_reason(
    fake: FakeMagento, connector: MagentoConnector
) -> None:
    fake.two_factor = True

    check = await connector.test_connection()

    assert check.ok is False
    assert check.code is RejectionCode.AUTH_FAILED
    assert "2fa" in check.detail


async def test_a_failed_stock_deduction_does_not_fail_the_push_and_is_reported() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/orders") and request.method == "POST":
            return httpx.Response(200, json={"entity_id": 7, "increment_id": "000000007"})
        if request.method == "PUT":
            if MUG in path:
                return httpx.Response(503, text="busy")
            return httpx.Response(200, json=1)
        if "/stockItems/" in path:
            return httpx.Response(200, json={"item_id": 1, "qty": 100, "is_in_stock": True})
        skus = request.url.params["searchCriteria[filter_groups][0][filters][0][value]"]
        return httpx.Response(200, json={"items": [{"id": 1, "sku": s} for s in skus.split(",")]})

    settings = ConnectionSettings(
        platform="magento", base_url="http://shop.test", credentials={"access_token": "t"}
    )
    connector = MagentoConnector(settings, transport=httpx.MockTransport(answer))
    try:
        created = await connector.create_order(push_order())
    finally:
        await connector.aclose()

    assert created.number == "000000007"
    assert created.details["stock"].startswith(f"not deducted for {MUG}: ")
    assert SHIRT not in created.details["stock"]
