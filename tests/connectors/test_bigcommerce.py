"""BigCommerce specifics beyond the contract: the V2 order body, option variants, the
lookup without an ``external_id`` filter, quota waits and field-error mapping
(tests/connectors/platforms/bigcommerce.py is the store)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orderbridge.connectors import bigcommerce
from orderbridge.connectors.bigcommerce import BigCommerceConnector, rejection
from orderbridge.connectors.port import PushRejected, PushRetryable, RejectionCode
from tests.connectors.orders import address, push_order
from tests.connectors.platforms.bigcommerce import STORE_HASH, TOKEN, BigCommerceFake, start

pytestmark = pytest.mark.timeout(30)

SHIRT, MUG = "TSHIRT-RED-M", "MUG-BLUE"


@pytest.fixture
async def store() -> AsyncIterator[BigCommerceFake]:
    async with start() as fake:
        fake.add_product(SHIRT, stock=5, price=Decimal("25.00"))
        fake.add_product(MUG, stock=5, price=Decimal("12.50"))
        yield fake


async def connect(store: BigCommerceFake, **options: str) -> BigCommerceConnector:
    settings = dataclasses.replace(store.settings(), options=options, timeout=0.5)
    return BigCommerceConnector(settings)


@pytest.fixture
async def connector(store: BigCommerceFake) -> AsyncIterator[BigCommerceConnector]:
    connector = await connect(store)
    yield connector
    await connector.aclose()


def posted(store: BigCommerceFake) -> dict[str, Any]:
    bodies = [r.json for r in store.requests if r.method == "POST"]
    assert len(bodies) == 1
    body: dict[str, Any] = bodies[0]
    return body


async def test_order_carries_our_id_as_external_id_with_source_and_notes(
    store: BigCommerceFake, connector: BigCommerceConnector
) -> None:
    order = push_order()

    created = await connector.create_order(order)

    body = posted(store)
    assert (body["external_id"], body["external_source"]) == (order.order_id, "orderbridge")
    assert order.order_id in body["staff_notes"]
    assert body["customer_message"] == "Leave at the door, please"
    assert (body["customer_id"], body["status_id"]) == (0, 11)
    assert body["payment_provider_id"] == order.payment_reference
    assert created.id == created.number == str(store.orders[0].id)


async def test_totals_are_sent_as_computed_and_booked_to_the_cent(
    store: BigCommerceFake, connector: BigCommerceConnector
) -> None:
    await connector.create_order(push_order())

    body = posted(store)
    assert {
        key: body[key]
        for key in (
            "subtotal_ex_tax",
            "subtotal_inc_tax",
            "shipping_cost_ex_tax",
            "shipping_cost_inc_tax",
            "discount_amount",
            "total_ex_tax",
            "total_inc_tax",
        )
    } == {
        "subtotal_ex_tax": "62.50",
        "subtotal_inc_tax": "74.00",
        "shipping_cost_ex_tax": "8.00",
        "shipping_cost_inc_tax": "9.60",
        "discount_amount": "5.00",
        "total_ex_tax": "65.50",
        "total_inc_tax": "78.60",
    }
    shirt = body["products"][0]
    assert (shirt["price_ex_tax"], shirt["price_inc_tax"]) == ("25.00", "29.5000")
    assert "currency_code" not in body


async def test_addresses_carry_the_country_name_and_code(
    store: BigCommerceFake, connector: BigCommerceConnector
) -> None:
    await connector.create_order(push_order())

    body = posted(store)
    (shipping,) = body["shipping_addresses"]
    assert (shipping["country"], shipping["country_iso2"]) == ("France", "FR")
    assert shipping["shipping_method"] == "Standard international"
    assert body["billing_address"]["email"] == "camille.durand@example.fr"


async def test_option_variants_are_ordered_with_their_product_options(
    store: BigCommerceFake, connector: BigCommerceConnector
) -> None:
    store.add_product(
        "HOODIE-L",
        stock=3,
        price=Decimal("25.00"),
        options=[{"id": 77, "option_id": 12, "label": "L", "option_display_name": "Size"}],
    )

    await connector.create_order(push_order(lines=[("HOODIE-L", 1)]))

    assert posted(store)["products"][0]["product_options"] == [{"id": 12, "value": "77"}]
    assert store.stock("HOODIE-L") == 2


async def test_stock_goes_down_by_the_quantities(
    store: BigCommerceFake, connector: BigCommerceConnector
) -> None:
    await connector.create_order(push_order())

    assert (store.stock(SHIRT), store.stock(MUG)) == (3, 4)


async def test_out_of_stock_names_the_item(
    store: BigCommerceFake, connector: BigCommerceConnector
) -> None:
    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(push_order(lines=[(MUG, 1), (SHIRT, 6)]))

    assert rejected.value.code is RejectionCode.OUT_OF_STOCK
    assert rejected.value.platform_code == "409"
    assert rejected.value.skus == (SHIRT,)
    assert store.stock(MUG) == 5


async def test_duties_are_a_custom_product_line(
    store: BigCommerceFake, connector: BigCommerceConnector
) -> None:
    order = push_order()
    duties = Decimal("4.20")
    order = dataclasses.replace(
        order,
        totals=dataclasses.replace(order.totals, duties=duties, total=order.totals.total + duties),
    )

    await connector.create_order(order)

    duty_line = posted(store)["products"][-1]
    assert duty_line["name"] == "Duties and import taxes"
    assert "product_id" not in duty_line
    assert store.orders[0].total == order.totals.total


async def test_find_order_pages_through_the_newest_orders(
    store: BigCommerceFake, connector: BigCommerceConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bigcommerce, "PAGE_SIZE", 2)
    first = push_order(lines=[(MUG, 1)])
    created = await connector.create_order(first)
    for _ in range(3):
        await connector.create_order(push_order(lines=[(MUG, 1)]))

    found = await connector.find_order(first.order_id)

    assert found is not None and found.id == created.id
    lookups = [r.query for r in store.requests if r.method == "GET" and r.path.endswith("/orders")]
    assert [query["page"] for query in lookups] == ["1", "2"]
    assert all(query["sort"] == "id:desc" and "min_date_created" in query for query in lookups)


async def test_find_order_on_an_empty_store_is_none(connector: BigCommerceConnector) -> None:
    assert await connector.find_order("never-pushed") is None


async def test_channel_option_books_and_looks_up_in_that_channel(
    store: BigCommerceFake,
) -> None:
    connector = await connect(store, channel_id="3")
    try:
        order = push_order()
        await connector.create_order(order)
        found = await connector.find_order(order.order_id)
    finally:
        await connector.aclose()

    assert found is not None
    assert posted(store)["channel_id"] == 3
    lookup = next(r for r in store.requests if r.method == "GET" and r.path.endswith("/orders"))
    assert lookup.query["channel_id"] == "3"


async def test_store_answer_is_reused_between_pushes(
    store: BigCommerceFake, connector: BigCommerceConnector
) -> None:
    await connector.create_order(push_order(lines=[(MUG, 1)]))
    await connector.create_order(push_order(lines=[(MUG, 1)]))

    assert len([r for r in store.requests if r.path.endswith("/v2/store")]) == 1


async def test_every_call_carries_the_token_under_the_store_hash(
    store: BigCommerceFake,
) -> None:
    settings = dataclasses.replace(
        store.settings(), base_url=f"{store.base_url}/stores/{STORE_HASH}/v3/"
    )
    connector = BigCommerceConnector(settings)
    try:
        await connector.create_order(push_order())
    finally:
        await connector.aclose()

    assert all(r.path.startswith(f"/stores/{STORE_HASH}/v") for r in store.requests)
    assert all(r.headers["X-Auth-Token"] == TOKEN for r in store.requests)


async def test_429_waits_until_the_quota_window_resets() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            json={"status": 429, "title": "Too many requests"},
            headers={"X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "4500"},
        )

    connector = BigCommerceConnector(
        dataclasses.replace(BigCommerceFake().settings(), base_url="https://api.example/stores/x"),
        transport=httpx.MockTransport(answer),
    )

    with pytest.raises(PushRetryable) as retryable:
        await connector.find_order("o-1")

    assert retryable.value.retry_after == 4.5
    assert retryable.value.platform_code == "429"


def response(status: int, body: object) -> httpx.Response:
    return httpx.Response(
        status, json=body, request=httpx.Request("POST", "https://api.example/v2/orders")
    )


@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (400, "The field 'billing_address' is invalid.", RejectionCode.INVALID_ADDRESS),
        (400, "The field 'state' does not allow null values.", RejectionCode.INVALID_ADDRESS),
        (400, "The field 'customer_id' is invalid.", RejectionCode.INVALID_CUSTOMER),
        (
            400,
            "The options of one or more products are invalid.",
            RejectionCode.PRODUCT_NOT_FOUND,
        ),
        (404, "The requested resource was not found.", RejectionCode.NOT_FOUND),
        (400, "The store is suspended.", RejectionCode.REJECTED),
    ],
)
def test_v2_field_errors_map_to_rejection_codes(
    status: int, message: str, expected: RejectionCode
) -> None:
    refused = rejection(response(status, [{"status": status, "message": message}]), {})

    assert refused.code is expected
    assert refused.platform_code == str(status)
    assert message in refused.detail


def test_v3_error_objects_are_read_too() -> None:
    refused = rejection(response(422, {"status": 422, "title": "Input is invalid"}), {})

    assert refused.code is RejectionCode.REJECTED
    assert "Input is invalid" in refused.detail


async def test_an_empty_quota_stops_calls_until_the_window_resets() -> None:
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.path)
        return httpx.Response(
            200,
            json={"name": "Store", "currency": "USD"},
            headers={"X-Rate-Limit-Requests-Left": "0", "X-Rate-Limit-Time-Reset-Ms": "20000"},
        )

    connector = BigCommerceConnector(
        dataclasses.replace(BigCommerceFake().settings(), base_url="https://api.example/stores/x"),
        transport=httpx.MockTransport(answer),
    )
    assert (await connector.test_connection()).ok

    with pytest.raises(PushRetryable) as retryable:
        await connector.create_order(push_order())

    assert retryable.value.retry_after is not None
    assert 19.0 < retryable.value.retry_after <= 20.0
    assert sent == ["/stores/x/v2/store"]


@pytest.mark.parametrize(
    ("country", "region", "state"),
    [
        ("US", "TX", "Texas"),
        ("CA", "Quebec", "Quebec"),
        ("FR", "IDF", "Île-de-France"),
        ("FR", None, ""),
        ("US", "Somewhere", "Somewhere"),
    ],
)
async def test_region_is_sent_as_the_state_name(
    store: BigCommerceFake,
    connector: BigCommerceConnector,
    country: str,
    region: str | None,
    state: str,
) -> None:
    where = address(country=country, region=region)

    await connector.create_order(dataclasses.replace(push_order(), shipping_address=where))

    assert posted(store)["shipping_addresses"][0]["state"] == state


@pytest.mark.parametrize(
    ("base_url", "options", "message"),
    [
        ("https://api.example/stores/x", {"channel_id": "web"}, "options.channel_id"),
        ("https://api.example/stores/x", {"lookup_days": "0"}, "options.lookup_days"),
        ("https://api.example/stores/x", {"status_id": "2.5"}, "options.status_id"),
        ("https://store.example.com", {}, "base_url"),
    ],
)
def test_malformed_connection_values_are_refused_by_name(
    base_url: str, options: dict[str, str], message: str
) -> None:
    settings = dataclasses.replace(BigCommerceFake().settings(), base_url=base_url, options=options)

    with pytest.raises(ValueError, match=message):
        BigCommerceConnector(settings)


async def test_a_wrong_store_hash_fails_the_connection_check_as_not_found(
    store: BigCommerceFake,
) -> None:
    settings = dataclasses.replace(store.settings(), base_url=f"{store.base_url}/stores/nope")
    connector = BigCommerceConnector(settings)
    try:
        check = await connector.test_connection()
    finally:
        await connector.aclose()

    assert check.ok is False
    assert check.code is RejectionCode.NOT_FOUND
