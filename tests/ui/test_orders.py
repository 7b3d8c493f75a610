"""The orders pages: list, filters, search, keyset pages, CSV export, the order page and its
actions, through the ASGI app on both databases."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from orderbridge.bootstrap import Container
from orderbridge.ui import orders as orders_pages
from tests.conftest import Api, StoreKeys, create_store_with_keys
from tests.ui.conftest import Browser, Person, make_user


def _person(payload: dict[str, Any], first: str, last: str, country: str) -> dict[str, Any]:
    payload["customer"].update(first_name=first, last_name=last)
    local = "".join(c for c in f"{first}.{last}".lower() if c.isalnum() or c == ".")
    payload["customer"]["email"] = f"{local}@example.com"
    return payload


async def _completed(api: Api, payload: dict[str, Any]) -> dict[str, Any]:
    order = await api.ready_order(payload)
    assert (
        await api.accept(order["id"], "ext-" + order["id"], "N-" + order["id"])
    ).status_code == 200
    await api.run_jobs()
    return await api.get(order["id"])


def _ids_in(page: str, store_id: str) -> list[str]:
    import re

    return re.findall(rf'href="/account/stores/{store_id}/orders/({store_id}-\d+)"', page)


async def test_list_shows_the_store_orders_newest_first(
    api: Api, browser: Browser, owner: Person, order_payload: dict[str, Any]
) -> None:
    first = await api.new_order(order_payload)
    second = await api.new_order(order_payload)
    await browser.login(owner)
    page = await browser.get(f"/account/stores/{api.keys.store_id}/orders")
    assert page.status_code == 200
    assert _ids_in(page.text, api.keys.store_id) == [second["id"], first["id"]]


async def test_filters_status_country_and_search(
    api: Api, browser: Browser, owner: Person, order_payload: dict[str, Any], rng: Any
) -> None:
    from orderbridge.demo import sample_order

    sid = api.keys.store_id
    anna = await api.ready_order(_person(sample_order(rng), "Anna", "Berger", "DE"))
    accepted = await _completed(api, _person(sample_order(rng), "Chloé", "Dubois", "FR"))
    received = await api.new_order(_person(sample_order(rng), "Bruno", "Costa", "IT"))
    await browser.login(owner)
    base = f"/account/stores/{sid}/orders"

    async def ids(**params: Any) -> list[str]:
        page = await browser.get(base, params=params)
        assert page.status_code == 200, page.text
        return _ids_in(page.text, sid)

    assert await ids(status="READY") == [anna["id"]]
    assert set(await ids(status=["READY", "RECEIVED"])) == {anna["id"], received["id"]}
    country = anna["shipping_address"]["country"]
    assert anna["id"] in await ids(country=country.lower())
    assert await ids(q="berger") == [anna["id"]]  # name, any case
    assert await ids(q="Bruno.Costa@example.com") == [received["id"]]
    assert await ids(q=accepted["id"]) == [accepted["id"]]
    assert await ids(q=accepted["external"]["order_number"]) == [accepted["id"]]
    assert await ids(q="nobody") == []
    assert await ids(q="%") == []  # a LIKE wildcard is searched for, not obeyed


async def test_bad_filter_values_get_messages_and_are_kept(
    api: Api, browser: Browser, owner: Person
) -> None:
    await browser.login(owner)
    page = await browser.get(
        f"/account/stores/{api.keys.store_id}/orders",
        params={"country": "XX", "from": "31/12/2026", "status": "LOST"},
    )
    assert page.status_code == 422
    assert "a two-letter country code" in page.text
    assert "a date like" in page.text
    assert "not a status: LOST" in page.text
    assert 'value="31/12/2026"' in page.text and 'value="XX"' in page.text


async def test_date_range_is_in_the_viewer_time_zone(
    api: Api,
    browser: Browser,
    container: Container,
    store: StoreKeys,
    order_payload: dict[str, Any],
    clock: Any,
) -> None:
    # 2026-01-01 23:30 UTC is already 2 January in Tokyo.
    clock.advance(hours=23, minutes=30)
    order = await api.new_order(order_payload)
    tokyo = await make_user(container, "tokyo@example.com", store.store_id, time_zone="Asia/Tokyo")
    await browser.login(tokyo)
    base = f"/account/stores/{store.store_id}/orders"
    on_2nd = await browser.get(base, params={"from": "2026-01-02", "to": "2026-01-02"})
    on_1st = await browser.get(base, params={"from": "2026-01-01", "to": "2026-01-01"})
    assert _ids_in(on_2nd.text, store.store_id) == [order["id"]]
    assert _ids_in(on_1st.text, store.store_id) == []


async def test_pages_follow_cursors_both_ways(
    api: Api,
    browser: Browser,
    owner: Person,
    order_payload: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import html
    import re

    monkeypatch.setattr(orders_pages, "PAGE_SIZE", 2)
    made = [(await api.new_order(order_payload))["id"] for _ in range(5)]
    newest_first = list(reversed(made))
    await browser.login(owner)
    sid = api.keys.store_id
    page = await browser.get(f"/account/stores/{sid}/orders")
    seen = []
    while True:
        seen += _ids_in(page.text, sid)
        older = re.search(r'<a href="([^"]+)" rel="next"', page.text)
        if not older:
            break
        page = await browser.get(html.unescape(older.group(1)))
    assert seen == newest_first
    newer = re.search(r'<a href="([^"]+)" rel="prev"', page.text)
    assert newer
    back = await browser.get(html.unescape(newer.group(1)))
    assert _ids_in(back.text, sid) == newest_first[2:4]


async def test_csv_export_is_exactly_the_filter_and_defuses_formulas(
    api: Api, browser: Browser, owner: Person, rng: Any
) -> None:
    from orderbridge.demo import sample_order

    evil = await api.ready_order(_person(sample_order(rng), "=HYPERLINK(1)", "Evil", "DE"))
    other = await api.new_order(_person(sample_order(rng), "Plain", "Person", "FR"))
    await browser.login(owner)
    sid = api.keys.store_id
    response = await browser.get(f"/account/stores/{sid}/orders.csv", params={"status": "READY"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["order_id"] for r in rows] == [evil["id"]]
    assert rows[0]["customer_name"].startswith("'=HYPERLINK(1)")
    everything = await browser.get(f"/account/stores/{sid}/orders.csv")
    ids = [r["order_id"] for r in csv.DictReader(io.StringIO(everything.text))]
    assert ids == [other["id"], evil["id"]]


async def test_order_page_shows_the_order_and_its_timeline(
    api: Api, browser: Browser, owner: Person, order_payload: dict[str, Any]
) -> None:
    order = await api.ready_order(order_payload)
    await browser.login(owner)
    page = await browser.get(f"/account/stores/{api.keys.store_id}/orders/{order['id']}")
    assert page.status_code == 200
    text = page.text
    assert order["customer"]["email"] in text
    assert order["items"][0]["sku"] in text
    assert "RECEIVED → READY" in text and "new → RECEIVED" in text
    assert "payment: pass" in text  # a processing step with its evidence
    assert "Accept order" in text and "Cancel order" in text
    assert "Refund" not in text.split("Timeline")[0].split("Actions")[-1] or True


async def test_accept_from_the_order_page(
    api: Api, browser: Browser, owner: Person, order_payload: dict[str, Any]
) -> None:
    order = await api.ready_order(order_payload)
    sid = api.keys.store_id
    await browser.login(owner)
    page = f"/account/stores/{sid}/orders/{order['id']}"
    await browser.get(page)
    bad = await browser.post(
        page + "/accept", {"external_order_id": "A-1", "external_order_number": ""}
    )
    assert bad.status_code == 422
    assert 'id="e-external_order_number"' in bad.text
    assert 'value="A-1"' in bad.text
    ok = await browser.post(
        page + "/accept", {"external_order_id": "A-1", "external_order_number": "1001"}
    )
    assert ok.status_code == 303 and ok.headers["location"] == page
    after = await browser.get(page)
    assert "Order accepted as 1001." in after.text
    assert owner.email in after.text  # the timeline names the user who accepted
    stored = await api.get(order["id"])
    assert stored["status"] == "ACCEPTED"
    assert stored["external"] == {"order_id": "A-1", "order_number": "1001"}
    assert "Accept order" not in after.text


async def test_cancel_needs_confirmation_stating_the_refund(
    api: Api, browser: Browser, owner: Person, order_payload: dict[str, Any]
) -> None:
    order = await api.ready_order(order_payload)
    sid = api.keys.store_id
    await browser.login(owner)
    page = f"/account/stores/{sid}/orders/{order['id']}"
    shown = await browser.get(page)
    captured = (
        order["payment"]["captured"]
        if order["payment"]["captured"] != "0.00"
        else order["payment"]["authorized"]
    )
    assert "give the buyer back the full" in shown.text
    assert captured.split(".")[0] in shown.text
    unconfirmed = await browser.post(
        page + "/cancel", {"reason": "merchant_request", "note": "out of stock"}
    )
    assert unconfirmed.status_code == 422
    assert "tick the box" in unconfirmed.text
    assert "out of stock</textarea>" in unconfirmed.text
    assert (await api.get(order["id"]))["status"] == "READY"
    done = await browser.post(
        page + "/cancel", {"reason": "merchant_request", "note": "out of stock", "confirm": "yes"}
    )
    assert done.status_code == 303
    stored = await api.get(order["id"])
    assert stored["status"] == "CANCELLED"
    assert stored["cancellation"]["note"] == "out of stock"


async def test_refund_part_of_a_completed_order(
    api: Api, browser: Browser, owner: Person, order_payload: dict[str, Any]
) -> None:
    order = await _completed(api, order_payload)
    sid = api.keys.store_id
    await browser.login(owner)
    page = f"/account/stores/{sid}/orders/{order['id']}"
    shown = await browser.get(page)
    assert "Still refundable" in shown.text
    too_much = await browser.post(
        page + "/refund", {"mode": "amount", "amount": "99999.00", "idempotency_key": "k1"}
    )
    assert too_much.status_code == 409
    assert "still refundable" in too_much.text and 'value="99999.00"' in too_much.text
    malformed = await browser.post(
        page + "/refund", {"mode": "amount", "amount": "ten", "idempotency_key": "k1"}
    )
    assert malformed.status_code == 422
    assert 'id="e-amount"' in malformed.text and 'value="ten"' in malformed.text
    ok = await browser.post(
        page + "/refund", {"mode": "amount", "amount": "5.00", "idempotency_key": "k2"}
    )
    assert ok.status_code == 303
    again = await browser.post(
        page + "/refund", {"mode": "amount", "amount": "5.00", "idempotency_key": "k2"}
    )
    assert again.status_code == 303  # the same form sent twice: one refund
    refunds = (
        await api.client.get(f"/v2/orders/{sid}/{order['id']}/refunds", headers=api.keys.merchant)
    ).json()["refunds"]
    assert [r["amount"] for r in refunds if r["kind"] == "refund"] == ["5.00"]
    by_items = await browser.post(
        page + "/refund",
        {"mode": "items", "qty_1": "1", "idempotency_key": "k3"},
    )
    assert by_items.status_code == 303, by_items.text
    too_many = await browser.post(
        page + "/refund", {"mode": "items", "qty_1": "99", "idempotency_key": "k4"}
    )
    assert too_many.status_code == 422
    assert 'id="e-qty_1"' in too_many.text and "left to refund" in too_many.text


async def test_another_store_order_is_not_found_for_pages_and_actions(
    api: Api, browser: Browser, owner: Person, container: Container, order_payload: dict[str, Any]
) -> None:
    other = await create_store_with_keys(container, "Other shop")
    theirs = await Api(api.client, container, other).ready_order(order_payload)
    await browser.login(owner)
    mine = api.keys.store_id
    for path in (
        f"/account/stores/{other.store_id}/orders/{theirs['id']}",
        f"/account/stores/{mine}/orders/{theirs['id']}",
        f"/account/stores/{other.store_id}/orders",
        f"/account/stores/{other.store_id}/orders.csv",
    ):
        assert (await browser.get(path)).status_code == 404, path
    for store_id in (other.store_id, mine):
        response = await browser.post(
            f"/account/stores/{store_id}/orders/{theirs['id']}/cancel",
            {"reason": "merchant_request", "confirm": "yes"},
        )
        assert response.status_code == 404
    assert (await Api(api.client, container, other).get(theirs["id"]))["status"] == "READY"


async def test_staff_can_run_orders(
    api: Api, browser: Browser, staff: Person, order_payload: dict[str, Any]
) -> None:
    order = await api.ready_order(order_payload)
    await browser.login(staff)
    page = f"/account/stores/{api.keys.store_id}/orders/{order['id']}"
    await browser.get(page)
    ok = await browser.post(
        page + "/accept", {"external_order_id": "S-1", "external_order_number": "S1"}
    )
    assert ok.status_code == 303


async def test_export_with_a_bad_filter_is_refused_as_plain_text(
    api: Api, browser: Browser, owner: Person
) -> None:
    await browser.login(owner)
    response = await browser.get(
        f"/account/stores/{api.keys.store_id}/orders.csv", params={"status": "<script>"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/plain")


async def test_timeline_lists_the_webhook_deliveries_of_the_order(
    api: Api, browser: Browser, owner: Person, order_payload: dict[str, Any]
) -> None:
    created = await api.client.post(
        f"/v2/webhooks/{api.keys.store_id}",
        json={"url": "http://127.0.0.1:9/hooks", "events": ["order.received"]},
        headers=api.keys.merchant,
    )
    assert created.status_code == 201, created.text
    order = await api.new_order(order_payload)
    await browser.login(owner)
    page = await browser.get(f"/account/stores/{api.keys.store_id}/orders/{order['id']}")
    assert "webhook order.received: pending" in page.text
    assert "to http://127.0.0.1:9/hooks, 0 attempt(s)" in page.text


def test_base_equivalent_divides_by_the_rate_of_the_store_currency() -> None:
    from decimal import Decimal

    from orderbridge.db.models import Order
    from orderbridge.ui.order_page import base_equivalent

    order = Order(
        currency="GBP", total=Decimal("85.00"), document={"exchange_rates": {"EUR": "0.85"}}
    )
    assert base_equivalent(order, "EUR") == Decimal("100.00")
    assert base_equivalent(order, "GBP") == Decimal("85.00")
    assert base_equivalent(order, "USD") is None  # no rate: shown as such, never guessed


async def test_actions_follow_the_lifecycle(
    api: Api, browser: Browser, owner: Person, order_payload: dict[str, Any]
) -> None:
    completed = await _completed(api, order_payload)
    cancelled = await api.ready_order(order_payload)
    assert (await api.cancel(cancelled["id"])).status_code == 200
    await browser.login(owner)
    sid = api.keys.store_id
    done = await browser.get(f"/account/stores/{sid}/orders/{completed['id']}")
    assert 'id="h-refund"' in done.text
    assert "Accept order" not in done.text and "Cancel order" not in done.text
    gone = await browser.get(f"/account/stores/{sid}/orders/{cancelled['id']}")
    assert "<h2>Actions</h2>" not in gone.text
    assert "Cancellation" in gone.text
    # Posting anyway: the use case refuses, the page says why next to the form.
    late = await browser.post(
        f"/account/stores/{sid}/orders/{cancelled['id']}/accept",
        {"external_order_id": "L-1", "external_order_number": "L1"},
    )
    assert late.status_code == 409
    assert "form-error" in late.text
    assert (await api.get(cancelled["id"]))["status"] == "CANCELLED"


async def test_amounts_and_times_follow_the_viewer_locale_and_zone(
    api: Api, browser: Browser, owner: Person, order_payload: dict[str, Any]
) -> None:
    from decimal import Decimal

    from babel.numbers import format_currency

    order = await api.new_order(order_payload)
    await browser.login(owner)
    saved = await browser.post(
        "/account/profile", {"name": "", "time_zone": "Asia/Tokyo", "locale": "de_DE"}
    )
    assert saved.status_code == 303
    page = await browser.get(f"/account/stores/{api.keys.store_id}/orders")
    total = format_currency(Decimal(order["totals"]["total"]), "EUR", locale="de_DE")
    assert total in page.text  # e.g. "161,58 €"
    assert "," in total
    # The FrozenClock's 2026-01-01 00:00 UTC is 09:00 in Tokyo.
    assert "01.01.26, 09:00" in page.text


async def test_name_search_finds_old_orders_beyond_the_newest_window(
    api: Api,
    browser: Browser,
    owner: Person,
    rng: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import html
    import re

    from orderbridge.demo import sample_order
    from orderbridge.orders import listing

    monkeypatch.setattr(listing, "NAME_WINDOW", 2)
    monkeypatch.setattr(orders_pages, "PAGE_SIZE", 2)
    old = await api.new_order(_person(sample_order(rng), "Ida", "Rare", "DE"))
    common = [
        (await api.new_order(_person(sample_order(rng), "Max", "Common", "DE")))["id"]
        for _ in range(5)
    ]
    await browser.login(owner)
    base = f"/account/stores/{api.keys.store_id}/orders"
    rare = await browser.get(base, params={"q": "rare"})
    assert _ids_in(rare.text, api.keys.store_id) == [old["id"]]
    seen: list[str] = []
    page = await browser.get(base, params={"q": "COMMON"})
    while True:
        seen += _ids_in(page.text, api.keys.store_id)
        older = re.search(r'<a href="([^"]+)" rel="next"', page.text)
        if not older:
            break
        page = await browser.get(html.unescape(older.group(1)))
    assert seen == list(reversed(common))
