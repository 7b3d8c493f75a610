"""WooCommerce beyond the contract: the order body (lines, fees, meta data), the two auth
styles, finding our order among many, and WooCommerce's error codes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from orderbridge.connectors.port import ConnectionSettings, PushRejected, RejectionCode
from orderbridge.connectors.woocommerce import META_KEY, WooCommerceConnector
from tests.connectors.orders import push_order
from tests.connectors.platforms import woocommerce
from tests.connectors.platforms.woocommerce import CONSUMER_KEY, FakeWooCommerce

pytestmark = pytest.mark.timeout(30)

SHIRT, MUG = "TSHIRT-RED-M", "MUG-BLUE"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWooCommerce]:
    async with woocommerce.start() as running:
        running.add_product(SHIRT, stock=10, price=Decimal("25.00"))
        running.add_product(MUG, stock=10, price=Decimal("12.50"))
        yield running


@pytest.fixture
async def connector(fake: FakeWooCommerce) -> AsyncIterator[WooCommerceConnector]:
    built = WooCommerceConnector(fake.settings())
    yield built
    await built.aclose()


async def test_order_books_line_discounts_and_carries_tax_as_an_untaxed_fee(
    fake: FakeWooCommerce, connector: WooCommerceConnector
) -> None:
    order = push_order(currency="EUR")

    await connector.create_order(order)

    [posted] = [r.json for r in fake.requests if r.method == "POST"]
    assert posted["set_paid"] is True
    assert posted["currency"] == "EUR"
    shirt = order.lines[0]
    assert posted["line_items"][0]["subtotal"] == str(shirt.unit_price * shirt.quantity)
    assert posted["line_items"][0]["total"] == str(
        shirt.unit_price * shirt.quantity - shirt.discount
    )
    line_tax = sum((line.tax for line in order.lines), Decimal(0))
    assert posted["fee_lines"] == [
        {"name": "Tax 20%", "total": str(line_tax), "tax_status": "none"},
        {"name": "Shipping tax", "total": str(order.shipping.tax), "tax_status": "none"},
    ]
    assert line_tax + order.shipping.tax == order.totals.tax
    assert posted["shipping_lines"][0]["total"] == str(order.totals.shipping)
    assert {"key": META_KEY, "value": order.order_id} in posted["meta_data"]
    assert posted["transaction_id"] == order.payment_reference
    assert posted["customer_note"] == order.customer_note
    assert posted["billing"]["email"] == order.email


async def test_paid_order_reduces_stock_through_woocommerce(
    fake: FakeWooCommerce, connector: WooCommerceConnector
) -> None:
    await connector.create_order(push_order())

    assert fake.products[SHIRT].stock == 8
    assert fake.products[MUG].stock == 9


async def test_variation_is_booked_under_its_parent_product(
    fake: FakeWooCommerce, connector: WooCommerceConnector
) -> None:
    fake.add_product("TSHIRT-BLUE-L", stock=3, price=Decimal("25.00"))
    fake.variations["TSHIRT-BLUE-L"] = 77

    await connector.create_order(push_order(lines=[("TSHIRT-BLUE-L", 2)]))

    [posted] = [r.json for r in fake.requests if r.method == "POST"]
    variation_id = fake.products["TSHIRT-BLUE-L"].id
    assert posted["line_items"][0]["product_id"] == 77
    assert posted["line_items"][0]["variation_id"] == variation_id
    assert fake.products["TSHIRT-BLUE-L"].stock == 1


@pytest.mark.parametrize(
    ("email", "customer_id"),
    [("camille.durand@example.fr", 12), ("new.buyer@example.fr", 0)],
    ids=["known-customer", "guest"],
)
async def test_customer_mode_email_books_the_order_to_the_buyers_account(
    fake: FakeWooCommerce, email: str, customer_id: int
) -> None:
    fake.customers.append({"id": 12, "email": "camille.durand@example.fr", "role": "customer"})
    settings = dataclasses.replace(fake.settings(), options={"customer_mode": "email"})
    connector = WooCommerceConnector(settings)
    try:
        await connector.create_order(push_order(email=email))
    finally:
        await connector.aclose()

    assert fake.booked[0]["customer_id"] == customer_id


async def test_a_variable_parent_sku_is_refused_before_anything_is_written(
    fake: FakeWooCommerce, connector: WooCommerceConnector
) -> None:
    fake.add_product("TSHIRT", stock=5, price=Decimal("25.00"))
    fake.product_types["TSHIRT"] = "variable"

    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(push_order(lines=[("TSHIRT", 1)]))

    assert rejected.value.code is RejectionCode.PRODUCT_NOT_FOUND
    assert fake.orders == []


async def test_tax_class_option_is_set_on_every_line(fake: FakeWooCommerce) -> None:
    settings = dataclasses.replace(fake.settings(), options={"tax_class": "zero-rate"})
    connector = WooCommerceConnector(settings)
    try:
        await connector.create_order(push_order())
    finally:
        await connector.aclose()

    [posted] = [r.json for r in fake.requests if r.method == "POST"]
    assert {line["tax_class"] for line in posted["line_items"]} == {"zero-rate"}


async def test_keys_go_in_the_query_string_when_asked(fake: FakeWooCommerce) -> None:
    settings = dataclasses.replace(fake.settings(), options={"auth": "query"})
    connector = WooCommerceConnector(settings)
    try:
        created = await connector.create_order(push_order())
    finally:
        await connector.aclose()

    assert created.id == fake.orders[0].id
    assert all("Authorization" not in r.headers for r in fake.requests)
    assert {r.query["consumer_key"] for r in fake.requests} == {CONSUMER_KEY}


async def test_find_order_pages_past_the_newest_orders(
    fake: FakeWooCommerce, connector: WooCommerceConnector
) -> None:
    order = push_order(lines=[(MUG, 1)])
    created = await connector.create_order(order)
    for number in range(150):  # newer orders of other channels
        fake.booked.append({**fake.booked[0], "id": 5000 + number, "meta_data": []})

    found = await connector.find_order(order.order_id)

    assert found is not None and found.id == created.id
    pages = [
        r.query["page"] for r in fake.requests if r.method == "GET" and r.path.endswith("/orders")
    ]
    assert pages == ["1", "2"]


async def test_find_order_does_not_look_past_lookup_days(
    fake: FakeWooCommerce, connector: WooCommerceConnector
) -> None:
    order = push_order(lines=[(MUG, 1)])
    await connector.create_order(order)
    fake.booked[0]["date_created_gmt"] = "2020-01-01T00:00:00"

    assert await connector.find_order(order.order_id) is None


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (400, {"code": "woocommerce_rest_invalid_product_id", "message": "Invalid product ID.",
               "data": {"status": 400}}, RejectionCode.PRODUCT_NOT_FOUND),
        (400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): billing",
               "data": {"status": 400,
                        "params": {"billing": "billing[email] is not a valid email address."}}},
         RejectionCode.INVALID_CUSTOMER),
        (400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): currency",
               "data": {"status": 400, "params": {"currency": "currency is not one of USD"}}},
         RejectionCode.CURRENCY_UNSUPPORTED),
        (401, {"code": "woocommerce_rest_cannot_create",
               "message": "Sorry, you are not allowed to create resources.",
               "data": {"status": 401}}, RejectionCode.AUTH_FAILED),
        (404, {"code": "rest_no_route", "message": "No route was found matching the URL",
               "data": {"status": 404}}, RejectionCode.NOT_FOUND),
    ],
    ids=["invalid-product", "invalid-email", "currency", "read-only-key", "no-route"],
)  # fmt: skip
async def test_woocommerce_error_codes_become_rejection_codes(
    status: int, body: dict[str, object], code: RejectionCode
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(status, content=json.dumps(body))
        skus = request.url.params["sku"].split(",")
        products = [{"id": n, "sku": sku, "stock_status": "instock"} for n, sku in enumerate(skus)]
        return httpx.Response(200, json=products)

    settings = ConnectionSettings(
        platform="woocommerce",
        base_url="https://shop.test",
        credentials={"consumer_key": "ck", "consumer_secret": "cs"},
    )
    connector = WooCommerceConnector(settings, transport=httpx.MockTransport(answer))
    try:
        with pytest.raises(PushRejected) as rejected:
            await connector.create_order(push_order())
    finally:
        await connector.aclose()

    assert rejected.value.code is code
