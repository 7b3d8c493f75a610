"""Malformed input on every endpoint gets a 4xx problem+json (contract §7): never a 500, and
never a half-write. Each row of the tables below sends one kind of bad input through the HTTP
API, on SQLite and on PostgreSQL, and checks the status, the problem body, the field paths of
validation errors, and that no table gained a row.

Rows that currently fail are marked with the ``KnownBug`` they show (a strict xfail, on the
backends where the bug shows), so that the fix turns them into failures until the mark goes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from orderbridge.api.app import create_app
from orderbridge.bootstrap import Container
from orderbridge.ids import FeedPosition
from orderbridge.stores import service as stores
from tests.conftest import Api, StoreKeys, create_store_with_keys
from tests.support.problems import assert_problem, error_fields, row_counts

Payload = dict[str, Any]
Change = Callable[[Payload], None]

# A store id that is never issued (issued ones have six digits): a genuinely missing store.
MISSING_STORE_ID = "123456789012"


# ---- known bugs -------------------------------------------------------------------------


@dataclass(frozen=True)
class KnownBug:
    reason: str
    backends: frozenset[str] = frozenset({"sqlite", "postgresql"})


def backend_of(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


def expect_known_bug(request: pytest.FixtureRequest, bug: KnownBug | None, backend: str) -> None:
    if bug is not None and backend in bug.backends:
        request.applymarker(pytest.mark.xfail(strict=True, reason=bug.reason))


# ---- fixtures ---------------------------------------------------------------------------


@pytest.fixture
async def client(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """Like the shared client, but a 500 comes back as a response, as from a real server,
    instead of the exception being raised into the test."""
    app = create_app(container, manage_container=False)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@dataclass(frozen=True)
class World:
    """Two stores, each with an order and events, so that cursors and ids can be real."""

    keys: StoreKeys
    other: StoreKeys
    order_id: str
    other_order_id: str
    event_id: str
    other_event_id: str

    def fill(self, template: str) -> str:
        return template.format(
            store=self.keys.store_id,
            order_id=self.order_id,
            other_order_id=self.other_order_id,
            event_id=self.event_id,
            other_event_id=self.other_event_id,
            unknown_event_id=FeedPosition(txid=2**47, pos=1).event_id(),
            huge_position_event_id=FeedPosition(txid=1, pos=2**31).event_id(),
        )


@pytest.fixture
async def world(
    api: Api, container: Container, client: httpx.AsyncClient, order_payload: Payload
) -> World:
    order = await api.ready_order(order_payload)
    other = await create_store_with_keys(container, "Other shop")
    response = await client.post(
        f"/v2/checkout/{other.store_id}/orders",
        json=order_payload,
        headers={**other.checkout, "Idempotency-Key": "other-store-order"},
    )
    assert response.status_code == 201, response.text
    other_events = await client.get(
        f"/v2/events/{other.store_id}", headers=other.merchant, params={"after_event_id": ""}
    )
    events = (await api.events(after_event_id=""))["events"]
    return World(
        keys=api.keys,
        other=other,
        order_id=order["id"],
        other_order_id=response.json()["id"],
        event_id=events[0]["event_id"],
        other_event_id=other_events.json()["events"][0]["event_id"],
    )


# ---- building bad checkout payloads -----------------------------------------------------


def _parent(payload: Payload, path: str) -> tuple[Any, Any]:
    *parents, last = path.split(".")
    node: Any = payload
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node, int(last) if isinstance(node, list) else last


def put(path: str, value: Any) -> Change:
    def change(payload: Payload) -> None:
        node, key = _parent(payload, path)
        node[key] = value

    return change


def drop(path: str) -> Change:
    def change(payload: Payload) -> None:
        node, key = _parent(payload, path)
        del node[key]

    return change


def shift(path: str, by: str) -> Change:
    """Add ``by`` to the amount at ``path``."""

    def change(payload: Payload) -> None:
        node, key = _parent(payload, path)
        node[key] = str(Decimal(node[key]) + Decimal(by))

    return change


def both(*changes: Change) -> Change:
    def change(payload: Payload) -> None:
        for each in changes:
            each(payload)

    return change


def one_item(currency: str, price: str) -> Change:
    """One item at ``price``, no tax, discount or shipping: every sum adds up, so the only
    possible complaint is the amounts' precision."""

    def change(payload: Payload) -> None:
        zero = "0" if currency == "JPY" else "0.00"
        item = payload["items"][0]
        item.update(quantity=1, unit_price=price, discount=zero, tax=zero, duty=zero, total=price)
        payload.update(currency=currency, items=[item], exchange_rates={})
        payload["shipping"].update(price=zero, tax=zero)
        payload["totals"] = {
            "items": price,
            "discount": zero,
            "shipping": zero,
            "tax": zero,
            "duties": zero,
            "total": price,
        }

    return change


@dataclass(frozen=True)
class BadBody:
    name: str
    change: Change
    fields: frozenset[str]
    bug: KnownBug | None = None


def bad(name: str, change: Change, *fields: str, bug: KnownBug | None = None) -> Any:
    return pytest.param(BadBody(name, change, frozenset(fields), bug), id=name)


PRECISION_FIELDS = ("items.0.unit_price", "items.0.total", "totals.items", "totals.total")

CHECKOUT_BODIES = [
    # missing and extra fields
    bad("customer_missing", drop("customer"), "customer"),
    bad("item_sku_missing", drop("items.0.sku"), "items.0.sku"),
    bad("totals_total_missing", drop("totals.total"), "totals.total"),
    bad("payment_reference_missing", drop("payment.reference"), "payment.reference"),
    bad("unknown_top_level_field", put("coupon", "WELCOME10"), "coupon"),
    bad("unknown_item_field", put("items.0.colour", "blue"), "items.0.colour"),
    # wrong types
    bad("customer_is_a_string", put("customer", "Camille Durand"), "customer"),
    bad("items_is_an_object", put("items", {}), "items"),
    bad("exchange_rates_is_a_list", put("exchange_rates", []), "exchange_rates"),
    bad("quantity_is_a_string", put("items.0.quantity", "2"), "items.0.quantity"),
    bad("quantity_is_a_boolean", put("items.0.quantity", True), "items.0.quantity"),
    bad("quantity_is_a_float", put("items.0.quantity", 1.5), "items.0.quantity"),
    bad("environment_unknown", put("environment", "production"), "environment"),
    # amounts
    bad("unit_price_is_a_float", put("items.0.unit_price", 29.9), "items.0.unit_price"),
    bad("totals_total_is_a_float", put("totals.total", 161.58), "totals.total"),
    bad("unit_price_is_negative", put("items.0.unit_price", "-29.90"), "items.0.unit_price"),
    bad("shipping_price_is_negative", put("shipping.price", "-9.90"), "shipping.price"),
    bad("unit_price_is_not_a_number", put("items.0.unit_price", "twelve"), "items.0.unit_price"),
    bad("unit_price_is_nan", put("items.0.unit_price", "NaN"), "items.0.unit_price"),
    bad("unit_price_is_infinite", put("items.0.unit_price", "Infinity"), "items.0.unit_price"),
    bad("eur_amount_with_three_decimals", one_item("EUR", "10.005"), *PRECISION_FIELDS),
    bad("jpy_amount_with_decimals", one_item("JPY", "1200.5"), *PRECISION_FIELDS),
    # sums that do not add up; the grand total is kept consistent so that only the
    # named field is wrong
    bad("item_total_off_by_a_cent", shift("items.0.total", "0.01"), "items.0.total"),
    bad(
        "totals_items_does_not_add_up",
        both(shift("totals.items", "1.00"), shift("totals.total", "1.00")),
        "totals.items",
    ),
    bad(
        "totals_discount_does_not_add_up",
        both(shift("totals.discount", "1.00"), shift("totals.total", "-1.00")),
        "totals.discount",
    ),
    bad(
        "totals_shipping_does_not_add_up",
        both(shift("totals.shipping", "1.00"), shift("totals.total", "1.00")),
        "totals.shipping",
    ),
    bad(
        "totals_tax_does_not_add_up",
        both(shift("totals.tax", "1.00"), shift("totals.total", "1.00")),
        "totals.tax",
    ),
    bad(
        "totals_duties_does_not_add_up",
        both(shift("totals.duties", "1.00"), shift("totals.total", "1.00")),
        "totals.duties",
    ),
    bad("totals_total_off_by_a_cent", shift("totals.total", "0.01"), "totals.total"),
    # codes
    bad("currency_not_three_letters", put("currency", "EURO"), "currency"),
    bad("currency_lower_case", put("currency", "eur"), "currency"),
    bad("currency_unknown", put("currency", "XYZ"), "currency"),
    bad(
        "shipping_country_alpha_3",
        put("shipping_address.country", "FRA"),
        "shipping_address.country",
    ),
    bad("billing_country_unknown", put("billing_address.country", "ZZ"), "billing_address.country"),
    bad(
        "item_origin_country_lower_case",
        put("items.0.origin_country", "fr"),
        "items.0.origin_country",
    ),
    bad("language_not_bcp47", put("language", "french!"), "language"),
    bad(
        "exchange_rate_currency_unknown",
        put("exchange_rates", {"ABC": {"rate": "1.1"}}),
        "exchange_rates.ABC.[key]",
    ),
    bad("exchange_rate_zero", put("exchange_rates.USD.rate", "0"), "exchange_rates.USD.rate"),
    # quantities and items
    bad("quantity_zero", put("items.0.quantity", 0), "items.0.quantity"),
    bad("quantity_negative", put("items.0.quantity", -1), "items.0.quantity"),
    bad("quantity_above_maximum", put("items.0.quantity", 100_001), "items.0.quantity"),
    bad("items_empty", put("items", []), "items"),
    # oversized and empty strings
    bad("first_name_too_long", put("customer.first_name", "C" * 256), "customer.first_name"),
    bad("first_name_blank", put("customer.first_name", "   "), "customer.first_name"),
    bad("sku_too_long", put("items.0.sku", "S" * 129), "items.0.sku"),
    bad("customer_note_too_long", put("customer_note", "n" * 2001), "customer_note"),
    bad("checkout_id_too_long", put("checkout_id", "c" * 129), "checkout_id"),
    bad(
        "too_many_item_options",
        put("items.0.options", {f"option{i}": "x" for i in range(21)}),
        "items.0.options",
    ),
    # email and client
    bad("email_without_at_sign", put("customer.email", "camille.example.com"), "customer.email"),
    bad(
        "email_with_a_space", put("customer.email", "camille durand@example.com"), "customer.email"
    ),
    bad("email_empty", put("customer.email", ""), "customer.email"),
    bad("client_ip_invalid", put("client.ip", "999.1.1.1"), "client.ip"),
    # several broken fields: one entry each
    bad(
        "several_broken_fields",
        both(
            put("customer.email", "nope"),
            put("currency", "EURO"),
            put("shipping_address.country", "ZZ"),
            put("items.0.quantity", 0),
        ),
        "customer.email",
        "currency",
        "shipping_address.country",
        "items.0.quantity",
    ),
    # control characters the database cannot store
    bad(
        "nul_in_first_name",
        put("customer.first_name", "Cam\x00ille"),
        "customer.first_name",
    ),
    bad("nul_in_checkout_id", put("checkout_id", "co\x00"), "checkout_id"),
]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda payload: None, id="sample_order"),
        pytest.param(one_item("EUR", "10.50"), id="eur_one_item"),
        pytest.param(one_item("JPY", "1200"), id="jpy_one_item"),
    ],
)
async def test_well_formed_checkout_order_is_accepted(
    api: Api, order_payload: Payload, change: Change
) -> None:
    # The control for the table below: its payloads differ from these by the one defect only.
    payload = json.loads(json.dumps(order_payload))
    change(payload)
    response = await api.submit(payload)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("case", CHECKOUT_BODIES)
async def test_malformed_checkout_order_is_rejected_with_every_field_error(
    request: pytest.FixtureRequest,
    database_url: str,
    api: Api,
    container: Container,
    order_payload: Payload,
    case: BadBody,
) -> None:
    expect_known_bug(request, case.bug, backend_of(database_url))
    payload = json.loads(json.dumps(order_payload))
    case.change(payload)
    before = await row_counts(container)

    response = await api.submit(payload)

    problem = assert_problem(response, 422, "validation_error")
    assert error_fields(problem) == case.fields
    assert await row_counts(container) == before


# ---- bodies that are not a JSON object, on every endpoint with a body --------------------


@dataclass(frozen=True)
class RawBody:
    content: bytes
    status: int
    code: str | None
    content_type: str = "application/json"


RAW_BODIES = {
    "not_json": RawBody(b"one blue t-shirt please", 400, "malformed_json"),
    "truncated_json": RawBody(b'{"currency": "EUR",', 400, "malformed_json"),
    "invalid_utf8": RawBody(b'{"currency": "\xff\xfe"}', 400, None),
    "json_array": RawBody(b"[]", 422, "validation_error"),
    "json_string": RawBody(b'"order"', 422, "validation_error"),
    "json_number": RawBody(b"42", 422, "validation_error"),
    "json_null": RawBody(b"null", 422, "validation_error"),
    "empty_body": RawBody(b"", 422, "validation_error"),
    "json_sent_as_text_plain": RawBody(b"{}", 422, "validation_error", "text/plain"),
}

BODY_ENDPOINTS = {
    "checkout": "/v2/checkout/{store}/orders",
    "accept": "/v2/orders/{store}/{order_id}/accept",
    "cancel": "/v2/orders/{store}/{order_id}/cancel",
}


def _raw_body_params() -> list[Any]:
    params = []
    for endpoint in BODY_ENDPOINTS:
        for name in RAW_BODIES:
            if endpoint == "cancel" and name == "empty_body":
                continue  # the cancel body is optional: no body is a plain cancel
            bug = None
            params.append(pytest.param(endpoint, name, bug, id=f"{endpoint}-{name}"))
    return params


@pytest.mark.parametrize(("endpoint", "body_name", "bug"), _raw_body_params())
async def test_body_that_is_not_a_json_object_is_rejected(
    request: pytest.FixtureRequest,
    database_url: str,
    client: httpx.AsyncClient,
    container: Container,
    world: World,
    endpoint: str,
    body_name: str,
    bug: KnownBug | None,
) -> None:
    expect_known_bug(request, bug, backend_of(database_url))
    body = RAW_BODIES[body_name]
    keys = world.keys.checkout if endpoint == "checkout" else world.keys.merchant
    headers = {**keys, "Content-Type": body.content_type, "Idempotency-Key": "raw-body"}
    before = await row_counts(container)

    response = await client.post(
        world.fill(BODY_ENDPOINTS[endpoint]), content=body.content, headers=headers
    )

    problem = assert_problem(response, body.status, body.code)
    if body.status == 422:
        assert error_fields(problem) == {"body"}
    assert await row_counts(container) == before


async def test_checkout_without_idempotency_key_or_checkout_id_is_rejected(
    api: Api, client: httpx.AsyncClient, container: Container, order_payload: Payload
) -> None:
    before = await row_counts(container)
    response = await client.post(
        f"/v2/checkout/{api.keys.store_id}/orders", json=order_payload, headers=api.keys.checkout
    )
    problem = assert_problem(response, 422, "validation_error")
    assert [f for f in error_fields(problem) if f.endswith("Idempotency-Key")], problem
    assert await row_counts(container) == before


@pytest.mark.parametrize(
    "key", [pytest.param("k" * 129, id="too_long"), pytest.param("", id="empty")]
)
async def test_checkout_with_malformed_idempotency_key_is_rejected(
    api: Api, container: Container, order_payload: Payload, key: str
) -> None:
    before = await row_counts(container)
    response = await api.client.post(
        f"/v2/checkout/{api.keys.store_id}/orders",
        json=order_payload,
        headers={**api.keys.checkout, "Idempotency-Key": key},
    )
    problem = assert_problem(response, 400, "validation_error")
    assert error_fields(problem) == {"header.Idempotency-Key"}
    assert await row_counts(container) == before


# ---- accept and cancel bodies -----------------------------------------------------------


@dataclass(frozen=True)
class BadAction:
    body: Any
    fields: frozenset[str]
    bug: KnownBug | None = None


def bad_action(name: str, body: Any, *fields: str, bug: KnownBug | None = None) -> Any:
    return pytest.param(BadAction(body, frozenset(fields), bug), id=name)


EXTERNAL = {"order_id": "92", "order_number": "00092"}

ACCEPT_BODIES = [
    bad_action("empty_object", {}, "external"),
    bad_action("external_empty", {"external": {}}, "external.order_id", "external.order_number"),
    bad_action("external_null", {"external": None}, "external"),
    bad_action("external_is_a_string", {"external": "92"}, "external"),
    bad_action(
        "order_id_is_a_number",
        {"external": {**EXTERNAL, "order_id": 92}},
        "external.order_id",
    ),
    bad_action(
        "order_number_empty",
        {"external": {**EXTERNAL, "order_number": ""}},
        "external.order_number",
    ),
    bad_action(
        "order_number_too_long",
        {"external": {**EXTERNAL, "order_number": "9" * 65}},
        "external.order_number",
    ),
    bad_action("unknown_field", {"external": EXTERNAL, "note": "thanks"}, "note"),
    bad_action(
        "unknown_external_field",
        {"external": {**EXTERNAL, "url": "https://shop.example/92"}},
        "external.url",
    ),
    bad_action(
        "nul_in_order_id",
        {"external": {**EXTERNAL, "order_id": "9\x002"}},
        "external.order_id",
    ),
]

CANCEL_BODIES = [
    bad_action("reason_unknown", {"reason": "changed_mind"}, "reason"),
    bad_action("reason_reserved_for_the_system", {"reason": "payment_failed"}, "reason"),
    bad_action("reason_is_a_number", {"reason": 1}, "reason"),
    bad_action("note_too_long", {"note": "n" * 2001}, "note"),
    bad_action("note_is_an_object", {"note": {"text": "sorry"}}, "note"),
    bad_action("unknown_field", {"refund": False}, "refund"),
    bad_action(
        "several_broken_fields",
        {"reason": "changed_mind", "note": 7, "refund": False},
        "reason",
        "note",
        "refund",
    ),
    bad_action("nul_in_note", {"note": "n\x00"}, "note"),
]


async def _post_action(
    request: pytest.FixtureRequest,
    database_url: str,
    client: httpx.AsyncClient,
    container: Container,
    world: World,
    action: str,
    case: BadAction,
) -> None:
    expect_known_bug(request, case.bug, backend_of(database_url))
    before = await row_counts(container)

    response = await client.post(
        world.fill(f"/v2/orders/{{store}}/{{order_id}}/{action}"),
        json=case.body,
        headers=world.keys.merchant,
    )

    problem = assert_problem(response, 422, "validation_error")
    assert error_fields(problem) == case.fields
    assert await row_counts(container) == before


@pytest.mark.parametrize("case", ACCEPT_BODIES)
async def test_malformed_accept_is_rejected_with_every_field_error(
    request: pytest.FixtureRequest,
    database_url: str,
    client: httpx.AsyncClient,
    container: Container,
    world: World,
    case: BadAction,
) -> None:
    await _post_action(request, database_url, client, container, world, "accept", case)


@pytest.mark.parametrize("case", CANCEL_BODIES)
async def test_malformed_cancel_is_rejected_with_every_field_error(
    request: pytest.FixtureRequest,
    database_url: str,
    client: httpx.AsyncClient,
    container: Container,
    world: World,
    case: BadAction,
) -> None:
    await _post_action(request, database_url, client, container, world, "cancel", case)


# ---- query parameters -------------------------------------------------------------------


@dataclass(frozen=True)
class BadQuery:
    query: str
    code: str | None
    fields: frozenset[str] = field(default_factory=frozenset)
    bug: KnownBug | None = None


def bad_query(
    name: str, query: str, code: str | None, *fields: str, bug: KnownBug | None = None
) -> Any:
    return pytest.param(BadQuery(query, code, frozenset(fields), bug), id=name)


EVENT_QUERIES = [
    bad_query("after_cursor_not_base32", "after_event_id=xyz", "invalid_cursor"),
    bad_query("after_cursor_too_short", "after_event_id=47CE0V5XR9CA", "invalid_cursor"),
    bad_query("after_cursor_one_too_long", "after_event_id=" + "0" * 17, "invalid_cursor"),
    bad_query(
        "after_cursor_beyond_max_length",
        "after_event_id=" + "0" * 33,
        "validation_error",
        "query.after_event_id",
    ),
    bad_query("after_cursor_outside_alphabet", "after_event_id=UUUUUUUUUUUUUUUU", "invalid_cursor"),
    bad_query("after_cursor_unknown", "after_event_id={unknown_event_id}", "invalid_cursor"),
    bad_query("before_cursor_unknown", "before_event_id={unknown_event_id}", "invalid_cursor"),
    bad_query("after_cursor_of_other_store", "after_event_id={other_event_id}", "invalid_cursor"),
    bad_query("before_cursor_of_other_store", "before_event_id={other_event_id}", "invalid_cursor"),
    bad_query(
        "after_cursor_position_beyond_int32",
        "after_event_id={huge_position_event_id}",
        "invalid_cursor",
    ),
    bad_query(
        "after_and_before_cursors",
        "after_event_id={event_id}&before_event_id={event_id}",
        "invalid_parameter",
    ),
    bad_query("unknown_event_name", "event=order.shipped", "invalid_parameter"),
    bad_query(
        "unknown_among_known_event_names",
        "event=order.ready&event=order.teleported",
        "invalid_parameter",
    ),
    bad_query("limit_zero", "limit=0", "validation_error", "query.limit"),
    bad_query("limit_above_maximum", "limit=101", "validation_error", "query.limit"),
    bad_query("limit_not_a_number", "limit=abc", "validation_error", "query.limit"),
    bad_query("limit_negative", "limit=-1", "validation_error", "query.limit"),
    bad_query(
        "several_broken_parameters",
        "limit=abc&after_event_id=" + "0" * 33,
        "validation_error",
        "query.limit",
        "query.after_event_id",
    ),
]

ORDER_QUERIES = [
    bad_query(
        "created_from_naive",
        "created_from=2026-01-31T00:00:00",
        "validation_error",
        "query.created_from",
    ),
    bad_query(
        "created_to_naive", "created_to=2026-01-31T00:00:00", "validation_error", "query.created_to"
    ),
    bad_query(
        "created_from_date_only",
        "created_from=2026-01-31",
        "validation_error",
        "query.created_from",
    ),
    bad_query(
        "created_from_not_a_datetime",
        "created_from=yesterday",
        "validation_error",
        "query.created_from",
    ),
    bad_query(
        "created_from_unix_time",
        "created_from=1700000000",
        "validation_error",
        "query.created_from",
    ),
    bad_query(
        "created_from_before_year_1_in_utc",
        "created_from=0001-01-01T00:00:00%2B12:00",
        None,
    ),
    bad_query(
        "created_to_after_year_9999_in_utc",
        "created_to=9999-12-31T23:59:59-12:00",
        None,
    ),
    bad_query("status_unknown", "status=SHIPPED", "validation_error", "query.status.0"),
    bad_query("limit_zero", "limit=0", "validation_error", "query.limit"),
    bad_query("limit_above_maximum", "limit=101", "validation_error", "query.limit"),
    bad_query("limit_not_a_number", "limit=abc", "validation_error", "query.limit"),
    bad_query("search_too_long", "q=" + "x" * 321, "validation_error", "query.q"),
    bad_query("search_with_nul", "q=%00", None),
    bad_query("after_cursor_not_an_order_id", "after_order_id=xyz", "invalid_cursor"),
    bad_query("before_cursor_without_store", "before_order_id=12", "invalid_cursor"),
    bad_query("after_cursor_of_other_store", "after_order_id={other_order_id}", "invalid_cursor"),
    bad_query(
        "after_cursor_beyond_bigint",
        "after_order_id={store}-9223372036854775808",
        "invalid_cursor",
    ),
    bad_query(
        "after_and_before_cursors",
        "after_order_id={order_id}&before_order_id={order_id}",
        "invalid_parameter",
    ),
    bad_query(
        "several_broken_parameters",
        "limit=0&status=SHIPPED&created_from=yesterday",
        "validation_error",
        "query.limit",
        "query.status.0",
        "query.created_from",
    ),
]


async def _get_with_query(
    request: pytest.FixtureRequest,
    database_url: str,
    client: httpx.AsyncClient,
    container: Container,
    world: World,
    path: str,
    case: BadQuery,
) -> None:
    expect_known_bug(request, case.bug, backend_of(database_url))
    before = await row_counts(container)

    response = await client.get(world.fill(f"{path}?{case.query}"), headers=world.keys.merchant)

    problem = assert_problem(response, 400, case.code)
    if case.fields:
        assert error_fields(problem) == case.fields
    assert await row_counts(container) == before


@pytest.mark.parametrize("case", EVENT_QUERIES)
async def test_malformed_event_feed_query_is_rejected(
    request: pytest.FixtureRequest,
    database_url: str,
    client: httpx.AsyncClient,
    container: Container,
    world: World,
    case: BadQuery,
) -> None:
    await _get_with_query(
        request, database_url, client, container, world, "/v2/events/{store}", case
    )


@pytest.mark.parametrize("case", ORDER_QUERIES)
async def test_malformed_order_search_is_rejected(
    request: pytest.FixtureRequest,
    database_url: str,
    client: httpx.AsyncClient,
    container: Container,
    world: World,
    case: BadQuery,
) -> None:
    await _get_with_query(
        request, database_url, client, container, world, "/v2/orders/{store}", case
    )


# ---- order ids in paths -----------------------------------------------------------------

ORDER_PATHS = [
    ("GET", "/v2/orders/{store}/{id}", None),
    ("POST", "/v2/orders/{store}/{id}/accept", {"external": EXTERNAL}),
    ("POST", "/v2/orders/{store}/{id}/cancel", {}),
    ("GET", "/v2/orders/{store}/{id}/timeline", None),
]

BAD_ORDER_IDS = [
    pytest.param("abc", None, id="not_an_order_id"),
    pytest.param("{store}", None, id="store_id_only"),
    pytest.param("{store}-", None, id="number_missing"),
    pytest.param("{store}-1-1", None, id="extra_segment"),
    pytest.param("{store}--1", None, id="negative_number"),
    pytest.param("{store}-999999", None, id="unknown_number"),
    pytest.param("{other_order_id}", None, id="order_of_other_store"),
    pytest.param("{store}-9223372036854775808", None, id="number_beyond_bigint"),
]


@pytest.mark.parametrize(("order_id", "bug"), BAD_ORDER_IDS)
async def test_malformed_or_unknown_order_id_is_not_found_on_every_order_path(
    request: pytest.FixtureRequest,
    database_url: str,
    client: httpx.AsyncClient,
    container: Container,
    world: World,
    order_id: str,
    bug: KnownBug | None,
) -> None:
    expect_known_bug(request, bug, backend_of(database_url))
    before = await row_counts(container)
    for method, template, body in ORDER_PATHS:
        path = world.fill(template.replace("{id}", order_id))
        response = await client.request(method, path, json=body, headers=world.keys.merchant)
        assert_problem(response, 404, "order_not_found")
    assert await row_counts(container) == before


# ---- authentication and store scoping ---------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def every_endpoint(store_id: str, order_id: str, payload: Payload) -> list[Call]:
    """One well-formed call per endpoint, so that only the credentials can be wrong."""
    return [
        Call("POST", f"/v2/checkout/{store_id}/orders", payload, {"Idempotency-Key": "probe"}),
        Call("GET", f"/v2/events/{store_id}"),
        Call("GET", f"/v2/orders/{store_id}"),
        Call("GET", f"/v2/orders/{store_id}/{order_id}"),
        Call("POST", f"/v2/orders/{store_id}/{order_id}/accept", {"external": EXTERNAL}),
        Call("POST", f"/v2/orders/{store_id}/{order_id}/cancel", {}),
        Call("GET", f"/v2/orders/{store_id}/{order_id}/timeline"),
    ]


async def _send(client: httpx.AsyncClient, call: Call, auth: dict[str, str]) -> httpx.Response:
    return await client.request(
        call.method, call.path, json=call.json, headers={**call.headers, **auth}
    )


async def _revoked_key(container: Container, store_id: str) -> str:
    now = container.clock.now()
    async with container.db.transaction() as session:
        issued = await stores.issue_key(
            session, store_id=store_id, kind=stores.KeyKind.MERCHANT, now=now
        )
        await stores.revoke_key(session, issued.key.id, now=now)
    return issued.secret


@pytest.mark.parametrize(
    ("credentials", "code"),
    [
        pytest.param(None, "unauthorized", id="no_header"),
        pytest.param("Basic Z2w6c2VjcmV0", "unauthorized", id="basic_scheme"),
        pytest.param("Bearer ", "unauthorized", id="bearer_without_key"),
        pytest.param(
            "GL.ABCDEFGHJKMNPQRSTVWXYZ0123456789", "unauthorized", id="key_without_scheme"
        ),
        pytest.param("Bearer GL.ABCDEFGHJKMNPQRSTVWXYZ0123456789", "invalid_key", id="unknown_key"),
        pytest.param("revoked", "invalid_key", id="revoked_key"),
    ],
)
async def test_missing_or_invalid_credentials_get_401_on_every_endpoint(
    client: httpx.AsyncClient,
    container: Container,
    world: World,
    order_payload: Payload,
    credentials: str | None,
    code: str,
) -> None:
    if credentials == "revoked":
        credentials = f"Bearer {await _revoked_key(container, world.keys.store_id)}"
    auth = {} if credentials is None else {"Authorization": credentials}
    before = await row_counts(container)
    for call in every_endpoint(world.keys.store_id, world.order_id, order_payload):
        response = await _send(client, call, auth)
        assert_problem(response, 401, code)
        assert response.headers.get("www-authenticate", "").startswith("Bearer"), call
    assert await row_counts(container) == before


async def test_checkout_key_on_merchant_endpoints_is_forbidden(
    client: httpx.AsyncClient, container: Container, world: World, order_payload: Payload
) -> None:
    before = await row_counts(container)
    merchant_calls = every_endpoint(world.keys.store_id, world.order_id, order_payload)[1:]
    for call in merchant_calls:
        response = await _send(client, call, world.keys.checkout)
        assert_problem(response, 403, "wrong_key_kind")
    assert await row_counts(container) == before


async def test_merchant_key_on_checkout_intake_is_forbidden(
    client: httpx.AsyncClient, container: Container, world: World, order_payload: Payload
) -> None:
    before = await row_counts(container)
    checkout = every_endpoint(world.keys.store_id, world.order_id, order_payload)[0]
    response = await _send(client, checkout, world.keys.merchant)
    assert_problem(response, 403, "wrong_key_kind")
    assert await row_counts(container) == before


async def test_key_of_one_store_finds_nothing_on_every_path_of_another(
    client: httpx.AsyncClient, container: Container, world: World, order_payload: Payload
) -> None:
    # The answer must not tell "exists but not yours" from "does not exist".
    before = await row_counts(container)
    other = world.other
    their_calls = every_endpoint(other.store_id, world.other_order_id, order_payload)
    nowhere_calls = every_endpoint(MISSING_STORE_ID, f"{MISSING_STORE_ID}-1", order_payload)
    for their, nowhere in zip(their_calls, nowhere_calls, strict=True):
        for key in (world.keys.merchant, world.keys.checkout):
            response = await _send(client, their, key)
            body = assert_problem(response, 404)
            missing = await _send(client, nowhere, key)
            assert body == missing.json(), their
    assert await row_counts(container) == before
    order = await client.get(
        f"/v2/orders/{other.store_id}/{world.other_order_id}", headers=other.merchant
    )
    assert order.json()["status"] == "RECEIVED"


UNKNOWN_ROUTES = [
    "/v2/nothing-here",
    "/v2/orders",
    "/v1/events/{store}",
    "/v2/orders/{store}/{store}-1/refund-everything",
]

WRONG_METHODS = [
    ("DELETE", "/v2/orders/{store}/{store}-1"),
    ("PATCH", "/v2/orders/{store}"),
    ("GET", "/v2/checkout/{store}/orders"),
    ("PUT", "/v2/checkout/{store}/orders"),
    ("POST", "/v2/events/{store}"),
    ("GET", "/v2/orders/{store}/{store}-1/accept"),
    ("DELETE", "/v2/orders/{store}/{store}-1/timeline"),
]


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient, store: StoreKeys) -> None:
    for path in UNKNOWN_ROUTES:
        response = await client.get(path.format(store=store.store_id), headers=store.merchant)
        assert_problem(response, 404, "not_found")


async def test_wrong_method_is_a_405_problem_naming_the_allowed_ones(
    client: httpx.AsyncClient, container: Container, store: StoreKeys
) -> None:
    before = await row_counts(container)
    for method, path in WRONG_METHODS:
        response = await client.request(
            method, path.format(store=store.store_id), headers=store.merchant
        )
        assert_problem(response, 405, "method_not_allowed")
        assert response.headers.get("allow"), (method, path)
    assert await row_counts(container) == before
