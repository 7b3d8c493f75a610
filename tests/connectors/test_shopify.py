"""Shopify specifics beyond the contract: what ``orderCreate`` is sent, throttling and
``userErrors`` mapping (tests/connectors/platforms/shopify.py is the shop)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orderbridge.connectors.port import PushRejected, PushRetryable, RejectionCode
from orderbridge.connectors.shopify import (
    ShopifyConnector,
    search_value,
    throttle_wait,
    user_errors_rejection,
)
from tests.connectors.orders import BUYER_CURRENCY, EXCHANGE_RATE, address, push_order
from tests.connectors.platforms.shopify import TOKEN, ShopifyFake, search_terms, start

pytestmark = pytest.mark.timeout(30)

SHIRT, MUG = "TSHIRT-RED-M", "MUG-BLUE"


@pytest.fixture
async def shop() -> AsyncIterator[ShopifyFake]:
    async with start() as fake:
        fake.add_product(SHIRT, stock=5, price=Decimal("25.00"))
        fake.add_product(MUG, stock=5, price=Decimal("12.50"))
        yield fake


@pytest.fixture
async def connector(shop: ShopifyFake) -> AsyncIterator[ShopifyConnector]:
    connector = ShopifyConnector(dataclasses.replace(shop.settings(), timeout=0.5))
    yield connector
    await connector.aclose()


def create_variables(shop: ShopifyFake) -> dict[str, Any]:
    calls = [r.json for r in shop.requests if r.json and "orderCreate" in r.json["query"]]
    assert len(calls) == 1
    variables: dict[str, Any] = calls[0]["variables"]
    return variables


async def test_order_is_tagged_with_our_id_channel_tag_and_note(
    shop: ShopifyFake, connector: ShopifyConnector
) -> None:
    order = push_order()

    await connector.create_order(order)

    sent = create_variables(shop)["order"]
    assert sent["sourceIdentifier"] == order.order_id
    assert sent["sourceName"] == "orderbridge"
    assert sent["tags"] == ["orderbridge"]
    assert order.order_id in sent["note"]
    assert "Leave at the door" in sent["note"]
    assert {"key": "orderbridge_order_id", "value": order.order_id} in sent["customAttributes"]


async def test_stock_is_claimed_obeying_policy_and_no_receipt_is_sent(
    shop: ShopifyFake, connector: ShopifyConnector
) -> None:
    await connector.create_order(push_order())

    assert create_variables(shop)["options"] == {
        "inventoryBehaviour": "DECREMENT_OBEYING_POLICY",
        "sendReceipt": False,
        "sendFulfillmentReceipt": False,
    }
    assert (shop.stock(SHIRT), shop.stock(MUG)) == (3, 4)


async def test_line_discounts_are_booked_as_one_fixed_discount(
    shop: ShopifyFake, connector: ShopifyConnector
) -> None:
    await connector.create_order(push_order())

    discount = create_variables(shop)["order"]["discountCode"]
    assert list(discount) == ["itemFixedDiscountCode"]
    assert discount["itemFixedDiscountCode"]["code"] == "orderbridge"
    assert discount["itemFixedDiscountCode"]["amountSet"]["shopMoney"] == {
        "amount": "5.00",
        "currencyCode": "USD",
    }


async def test_order_in_base_currency_carries_the_buyers_presentment_money(
    shop: ShopifyFake, connector: ShopifyConnector
) -> None:
    order = push_order()

    await connector.create_order(order)

    sent = create_variables(shop)["order"]
    assert (sent["currency"], sent["presentmentCurrency"]) == ("USD", BUYER_CURRENCY)
    price = sent["lineItems"][0]["priceSet"]
    assert price["shopMoney"] == {"amount": "25.00", "currencyCode": "USD"}
    assert price["presentmentMoney"] == {
        "amount": str((Decimal("25.00") * EXCHANGE_RATE).quantize(Decimal("0.01"))),
        "currencyCode": BUYER_CURRENCY,
    }
    assert sent["transactions"][0]["amountSet"]["shopMoney"]["amount"] == str(order.totals.total)


async def test_order_in_the_buyers_currency_is_booked_in_that_currency_only(
    shop: ShopifyFake, connector: ShopifyConnector
) -> None:
    await connector.create_order(push_order(currency=BUYER_CURRENCY))

    sent = create_variables(shop)["order"]
    assert sent["currency"] == BUYER_CURRENCY
    assert "presentmentCurrency" not in sent
    assert "presentmentMoney" not in sent["lineItems"][0]["priceSet"]


async def test_order_is_marked_paid_with_the_payment_reference(
    shop: ShopifyFake, connector: ShopifyConnector
) -> None:
    order = push_order()

    await connector.create_order(order)

    sent = create_variables(shop)["order"]
    assert sent["financialStatus"] == "PAID"
    (transaction,) = sent["transactions"]
    assert (transaction["kind"], transaction["status"]) == ("SALE", "SUCCESS")
    assert transaction["authorizationCode"] == order.payment_reference


async def test_duties_become_a_custom_line_without_shipping_or_tax(
    shop: ShopifyFake, connector: ShopifyConnector
) -> None:
    order = push_order()
    duties = Decimal("4.20")
    order = dataclasses.replace(
        order,
        totals=dataclasses.replace(order.totals, duties=duties, total=order.totals.total + duties),
    )

    await connector.create_order(order)

    duty_line = create_variables(shop)["order"]["lineItems"][-1]
    assert duty_line["title"] == "Duties and import taxes"
    assert (duty_line["requiresShipping"], duty_line["taxable"]) == (False, False)
    assert "variantId" not in duty_line
    assert shop.orders[0].total == order.totals.total


async def test_every_call_carries_the_access_token_on_the_configured_api_version(
    shop: ShopifyFake,
) -> None:
    settings = dataclasses.replace(shop.settings(), options={"api_version": "2025-10"})
    connector = ShopifyConnector(settings)
    try:
        await connector.create_order(push_order())
    finally:
        await connector.aclose()

    assert {r.path for r in shop.requests} == {"/admin/api/2025-10/graphql.json"}
    assert all(r.headers["X-Shopify-Access-Token"] == TOKEN for r in shop.requests)


async def test_unknown_sku_is_refused_before_any_order_is_created(
    shop: ShopifyFake, connector: ShopifyConnector
) -> None:
    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(push_order(lines=[(SHIRT, 1), ("GONE-1", 1)]))

    assert rejected.value.skus == ("GONE-1",)
    assert not [r for r in shop.requests if "orderCreate" in r.json["query"]]


async def test_out_of_stock_names_the_item(shop: ShopifyFake, connector: ShopifyConnector) -> None:
    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(push_order(lines=[(MUG, 1), (SHIRT, 6)]))

    assert rejected.value.code is RejectionCode.OUT_OF_STOCK
    assert rejected.value.platform_code == "INVENTORY_CLAIM_FAILED"
    assert rejected.value.skus == (SHIRT,)
    assert shop.stock(MUG) == 5


async def test_connection_check_names_the_shop(connector: ShopifyConnector) -> None:
    check = await connector.test_connection()

    assert check.ok
    assert check.detail == "connected to Orderbridge Test Shop (USD)"


def answer_with(
    status: int, body: object, headers: dict[str, str] | None = None
) -> ShopifyConnector:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    settings = dataclasses.replace(ShopifyFake().settings(), base_url="https://acme.myshopify.com")
    return ShopifyConnector(settings, transport=httpx.MockTransport(answer))


async def test_http_429_waits_for_the_retry_after_header() -> None:
    connector = answer_with(429, {"errors": "Exceeded 2 calls per second"}, {"Retry-After": "3.0"})

    with pytest.raises(PushRetryable) as retryable:
        await connector.find_order("o-1")

    assert retryable.value.retry_after == 3.0


async def test_http_429_with_a_throttle_status_waits_for_the_restore() -> None:
    body = {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {
            "cost": {
                "requestedQueryCost": 252,
                "actualQueryCost": None,
                "throttleStatus": {
                    "maximumAvailable": 1000.0,
                    "currentlyAvailable": 2.0,
                    "restoreRate": 50.0,
                },
            }
        },
    }
    connector = answer_with(429, body)

    with pytest.raises(PushRetryable) as retryable:
        await connector.find_order("o-1")

    assert retryable.value.retry_after == 5.0


def test_throttle_wait_is_zero_when_the_bucket_already_holds_the_cost() -> None:
    body = {
        "extensions": {
            "cost": {
                "requestedQueryCost": 10,
                "throttleStatus": {"currentlyAvailable": 50, "restoreRate": 100},
            }
        }
    }

    assert throttle_wait(body) == 0.0
    assert throttle_wait({"extensions": {}}) is None


async def test_access_denied_is_permission_denied() -> None:
    body = {
        "errors": [
            {
                "message": "Access denied for orderCreate field.",
                "extensions": {"code": "ACCESS_DENIED"},
            }
        ]
    }
    connector = answer_with(200, body)

    check = await connector.test_connection()

    assert check.code is RejectionCode.PERMISSION_DENIED


async def test_find_order_ignores_loose_search_matches() -> None:
    body = {
        "data": {
            "orders": {
                "nodes": [
                    {"id": "gid://shopify/Order/1", "name": "#1001", "sourceIdentifier": "o-10"},
                    {"id": "gid://shopify/Order/2", "name": "#1002", "sourceIdentifier": "o-1"},
                ]
            }
        }
    }
    connector = answer_with(200, body)

    found = await connector.find_order("o-1")

    assert found is not None
    assert (found.id, found.number) == ("gid://shopify/Order/2", "#1002")


@pytest.mark.parametrize(
    ("code", "field", "expected"),
    [
        ("INVENTORY_CLAIM_FAILED", ["order", "lineItems", "0"], RejectionCode.OUT_OF_STOCK),
        ("INVALID", ["order", "shippingAddress", "zip"], RejectionCode.INVALID_ADDRESS),
        ("INVALID", ["order", "lineItems", "1", "variantId"], RejectionCode.PRODUCT_NOT_FOUND),
        ("INVALID", ["order", "presentmentCurrency"], RejectionCode.CURRENCY_UNSUPPORTED),
        ("INVALID", ["order", "email"], RejectionCode.INVALID_CUSTOMER),
        ("SHOP_DORMANT", None, RejectionCode.REJECTED),
        ("TAX_LINE_RATE_MISSING", ["order", "taxLines", "0", "rate"], RejectionCode.REJECTED),
    ],
)
def test_user_errors_map_to_rejection_codes(
    code: str, field: list[str] | None, expected: RejectionCode
) -> None:
    rejection = user_errors_rejection(
        [{"code": code, "field": field, "message": "refused"}], push_order()
    )

    assert rejection.code is expected
    assert rejection.platform_code == code
    assert "refused" in rejection.detail


def test_search_values_are_quoted_and_escaped() -> None:
    value = search_value('A "quoted" SKU:1')

    assert search_terms(f"sku:{value} OR sku:B") == [("sku", 'A "quoted" SKU:1'), ("sku", "B")]


async def test_request_body_is_json_with_decimal_strings(
    shop: ShopifyFake, connector: ShopifyConnector
) -> None:
    await connector.create_order(push_order())

    raw = next(r.body for r in shop.requests if b"orderCreate" in r.body)
    assert '"amount": "25.00"' in raw.decode() or '"amount":"25.00"' in raw.decode()
    assert json.loads(raw)["variables"]["order"]["lineItems"][0]["quantity"] == 2


@pytest.mark.parametrize(
    ("region", "expected"),
    [("Texas", "TX"), ("US-TX", "TX"), ("tx", "TX"), ("Nowhere", None), (None, None)],
)
async def test_region_is_sent_as_its_province_code(
    shop: ShopifyFake, connector: ShopifyConnector, region: str | None, expected: str | None
) -> None:
    texan = address(
        line1="123 Main Street", city="Austin", postal_code="78751", country="US", region=region
    )

    await connector.create_order(dataclasses.replace(push_order(), shipping_address=texan))

    assert create_variables(shop)["order"]["shippingAddress"].get("provinceCode") == expected


@pytest.mark.parametrize("version", ["latest", "2026-11", "v1"])
def test_an_api_version_shopify_does_not_publish_is_refused(version: str) -> None:
    settings = dataclasses.replace(ShopifyFake().settings(), options={"api_version": version})

    with pytest.raises(ValueError, match=r"options\.api_version"):
        ShopifyConnector(settings)


async def test_a_shop_without_the_admin_api_fails_the_connection_check_as_not_found(
    shop: ShopifyFake,
) -> None:
    settings = dataclasses.replace(shop.settings(), base_url=f"{shop.base_url}/not-a-shop")
    connector = ShopifyConnector(settings)
    try:
        check = await connector.test_connection()
    finally:
        await connector.aclose()

    assert check.ok is False
    assert check.code is RejectionCode.NOT_FOUND


async def test_find_order_checks_the_newest_orders_first(
    shop: ShopifyFake, connector: ShopifyConnector
) -> None:
    order = push_order()
    await connector.create_order(order)

    await connector.find_order(order.order_id)

    lookup = next(r.json for r in shop.requests if "orderbridgeFind" in r.json["query"])
    assert "sortKey: CREATED_AT, reverse: true" in lookup["query"]
    assert lookup["variables"] == {"query": f'source_identifier:"{order.order_id}"'}
