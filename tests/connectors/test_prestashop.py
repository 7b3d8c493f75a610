"""PrestaShop beyond the contract: XML writes and JSON reads, the tagged cart with its
cart-scoped prices, our totals replacing validateOrder's, customers reused by e-mail,
and the shop settings that refuse an order."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from orderbridge.connectors.port import (
    ConnectionSettings,
    PushRejected,
    PushRetryable,
    RejectionCode,
)
from orderbridge.connectors.prestashop import PrestaShopConnector
from tests.connectors.orders import address, push_order
from tests.connectors.platforms import prestashop
from tests.connectors.platforms.prestashop import FakePrestaShop

pytestmark = pytest.mark.timeout(30)

SHIRT, MUG = "TSHIRT-RED-M", "MUG-BLUE"


@pytest.fixture
async def fake() -> AsyncIterator[FakePrestaShop]:
    async with prestashop.start() as running:
        running.add_product(SHIRT, stock=10, price=Decimal("25.00"))
        running.add_product(MUG, stock=10, price=Decimal("12.50"))
        yield running


@pytest.fixture
async def connector(fake: FakePrestaShop) -> AsyncIterator[PrestaShopConnector]:
    built = PrestaShopConnector(fake.settings())
    yield built
    await built.aclose()


def posted(fake: FakePrestaShop, resource: str) -> list[ET.Element]:
    return [
        ET.fromstring(r.body)[0]
        for r in fake.requests
        if r.method == "POST" and r.path == f"/api/{resource}"
    ]


async def test_writes_are_xml_and_every_answer_is_asked_as_json(
    fake: FakePrestaShop, connector: PrestaShopConnector
) -> None:
    await connector.create_order(push_order())

    writes = [r for r in fake.requests if r.method in ("POST", "PUT")]
    assert {r.headers["Content-Type"] for r in writes} == {"application/xml"}
    assert all(r.body.startswith(b"<?xml") for r in writes)
    assert {r.query["output_format"] for r in fake.requests} == {"JSON"}


async def test_cart_carries_our_tag_and_cart_scoped_prices_in_the_order_currency(
    fake: FakePrestaShop, connector: PrestaShopConnector
) -> None:
    order = push_order(currency="EUR")

    await connector.create_order(order)

    [cart] = posted(fake, "carts")
    assert cart.findtext("gift_message") == f"orderbridge:{order.order_id}"
    assert cart.findtext("gift") == "0"
    assert cart.findtext("id_currency") == "2"  # EUR in the fake shop
    rows = cart.findall("./associations/cart_rows/cart_row")
    assert [row.findtext("quantity") for row in rows] == ["2", "1"]
    prices = posted(fake, "specific_prices")
    assert [p.findtext("price") for p in prices] == [str(line.unit_price) for line in order.lines]
    assert {p.findtext("id_cart") for p in prices} == {str(fake.tables["carts"][0]["id"])}
    assert {p.findtext("id_currency") for p in prices} == {"2"}


async def test_pushed_totals_replace_validate_orders_and_the_payment_error_state(
    fake: FakePrestaShop, connector: PrestaShopConnector
) -> None:
    order = push_order()  # the discount and the buyer's tax differ from the shop's rules

    created = await connector.create_order(order)

    held = fake.tables["orders"][0]
    assert Decimal(held["total_paid"]) == order.totals.total
    assert Decimal(held["total_discounts_tax_excl"]) == order.totals.discount
    assert held["current_state"] == "2"
    assert created.details["totals"] == "set to the pushed amounts"
    assert created.number == held["reference"]


async def test_customer_is_found_by_email_and_created_once(
    fake: FakePrestaShop, connector: PrestaShopConnector
) -> None:
    await connector.create_order(push_order(lines=[(MUG, 1)]))
    await connector.create_order(push_order(lines=[(MUG, 1)]))
    await connector.create_order(push_order(lines=[(MUG, 1)], email="other@example.com"))

    assert sorted(c["email"] for c in fake.tables["customers"]) == [
        "camille.durand@example.fr",
        "other@example.com",
    ]
    assert len(fake.orders) == 3


async def test_separate_billing_address_is_its_own_prestashop_address(
    fake: FakePrestaShop, connector: PrestaShopConnector
) -> None:
    order = dataclasses.replace(push_order(), billing=address(line1="1 avenue Foch"))

    await connector.create_order(order)

    held = fake.tables["orders"][0]
    assert held["id_address_delivery"] != held["id_address_invoice"]
    assert [a["address1"] for a in fake.tables["addresses"]] == [
        "12 rue de la Paix",
        "1 avenue Foch",
    ]


async def test_currency_the_shop_lacks_is_currency_unsupported(
    fake: FakePrestaShop, connector: PrestaShopConnector
) -> None:
    fake.tables["currencies"] = [c for c in fake.tables["currencies"] if c["iso_code"] != "EUR"]

    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(push_order(currency="EUR"))

    assert rejected.value.code is RejectionCode.CURRENCY_UNSUPPORTED
    assert fake.orders == []


async def test_country_the_shop_lacks_is_an_invalid_address(
    fake: FakePrestaShop, connector: PrestaShopConnector
) -> None:
    order = dataclasses.replace(push_order(), shipping_address=address(country="ZZ"))

    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(order)

    assert rejected.value.code is RejectionCode.INVALID_ADDRESS
    assert fake.orders == []


async def test_a_combinations_reference_books_that_combination_with_its_own_stock(
    fake: FakePrestaShop, connector: PrestaShopConnector
) -> None:
    fake.add_combination("TSHIRT-RED-L", of=SHIRT, stock=3)

    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(push_order(lines=[("TSHIRT-RED-L", 4)]))
    assert rejected.value.code is RejectionCode.OUT_OF_STOCK
    order = push_order(lines=[("TSHIRT-RED-L", 2), (MUG, 1)])
    await connector.create_order(order)

    [cart] = posted(fake, "carts")
    row = cart.findall("./associations/cart_rows/cart_row")[0]
    combination = fake.tables["combinations"][0]
    assert row.findtext("id_product") == str(fake.products[SHIRT].id)
    assert row.findtext("id_product_attribute") == str(combination["id"])
    assert fake.orders[0].skus == [("TSHIRT-RED-L", 2), (MUG, 1)]
    assert fake.orders[0].unit_prices["TSHIRT-RED-L"] == order.lines[0].unit_price
    stock = {(s["id_product"], s["id_product_attribute"]): s["quantity"]
             for s in fake.tables["stock_availables"]}  # fmt: skip
    assert stock[(fake.products[SHIRT].id, combination["id"])] == 1
    assert stock[(fake.products[SHIRT].id, 0)] == 10


async def test_product_that_allows_backorders_sells_beyond_its_stock(
    fake: FakePrestaShop, connector: PrestaShopConnector
) -> None:
    shirt_id = fake.products[SHIRT].id
    for stock in fake.tables["stock_availables"]:
        if stock["id_product"] == shirt_id:
            stock["out_of_stock"] = 1

    await connector.create_order(push_order(lines=[(SHIRT, 12)]))

    assert fake.orders[0].skus == [(SHIRT, 12)]


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ('Validation error: "Property Address->postcode is empty."', RejectionCode.INVALID_ADDRESS),
        ('Validation error: "Property Customer->email is not valid."',
         RejectionCode.INVALID_CUSTOMER),
        ("Invalid carrier", RejectionCode.SHIPPING_UNAVAILABLE),
        ("Unexpected", RejectionCode.REJECTED),
    ],
)  # fmt: skip
async def test_prestashop_validation_errors_become_rejection_codes(
    message: str, code: RejectionCode
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400, content=json.dumps({"errors": [{"code": 41, "message": message}]})
        )

    settings = ConnectionSettings(
        platform="prestashop", base_url="https://shop.test", credentials={"api_key": "K"}
    )
    connector = PrestaShopConnector(settings, transport=httpx.MockTransport(answer))
    try:
        with pytest.raises(PushRejected) as rejected:
            await connector.create_order(push_order())
    finally:
        await connector.aclose()

    assert rejected.value.code is code
    assert message in rejected.value.detail


async def test_failing_to_read_the_created_order_is_retryable_and_the_retry_finds_it(
    fake: FakePrestaShop, connector: PrestaShopConnector
) -> None:
    order = push_order()
    fake.unreadable.add("orders")

    with pytest.raises(PushRetryable):
        await connector.create_order(order)

    found = await connector.find_order(order.order_id)
    assert found is not None and found.id == fake.orders[0].id
    assert len(fake.orders) == 1
