"""Refunds of completed orders through the HTTP API (contract §4), on SQLite and PostgreSQL:
amounts, limits, idempotency, events and the order's ``payment.refunded``."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from orderbridge.clock import FrozenClock
from tests.conftest import Api
from tests.refunds.conftest import (
    ITEM_2_TOTAL,
    SHIPPING,
    TOTAL,
    RefundApi,
    known_order,
    run_until_quiet,
    stored,
)
from tests.refunds.providers import RecordingProvider

pytestmark = pytest.mark.timeout(60)


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def test_full_refund_goes_back_to_the_buyer_and_shows_in_the_order(
    refunds: RefundApi, provider: RecordingProvider
) -> None:
    order = await refunds.completed_order()
    assert order["payment"]["captured"] == str(TOTAL)

    refund = await refunds.create(order["id"], {"amount": str(TOTAL), "reason": "lost parcel"})
    assert refund["id"].startswith("rf_")
    assert (refund["status"], refund["amount"], refund["currency"]) == ("pending", "71.87", "EUR")
    assert (refund["kind"], refund["reason"], refund["order_id"]) == (
        "refund",
        "lost parcel",
        order["id"],
    )
    assert (refund["items"], refund["shipping"], refund["completed_at"]) == ([], False, None)
    assert await refunds.events(order["id"]) == [("refund.created", refund["id"])]

    await refunds.api.run_jobs()
    [done] = await refunds.listed(order["id"])
    assert (done["id"], done["status"], done["failure_reason"]) == (
        refund["id"],
        "succeeded",
        None,
    )
    assert done["completed_at"] is not None
    assert await refunds.events(order["id"]) == [
        ("refund.created", refund["id"]),
        ("refund.completed", refund["id"]),
    ]
    order = await refunds.api.get(order["id"])
    assert order["payment"]["refunded"] == "71.87"
    assert order["payment"]["status"] == "refunded"
    assert order["refunds"] == [done]
    # The list page renders the refunds too.
    page = (
        await refunds.client.get(
            f"/v2/orders/{refunds.api.keys.store_id}", headers=refunds.api.keys.merchant
        )
    ).json()
    assert page["orders"][0]["refunds"] == [done]
    # One refund at the provider, keyed by the refund id.
    assert [(c.amount, c.idempotency_key) for c in provider.refund_calls] == [(TOTAL, refund["id"])]
    assert await provider.refunded_at_provider(order["payment"]["reference"]) == TOTAL


async def test_partial_refunds_add_up_exactly_and_the_one_beyond_the_capture_is_refused(
    refunds: RefundApi, provider: RecordingProvider
) -> None:
    order = await refunds.completed_order()
    first = await refunds.create(order["id"], {"amount": "10.00"})
    await refunds.api.run_jobs()
    # Pending refunds count against the capture as much as completed ones.
    second = await refunds.create(order["id"], {"amount": "20.5"})
    third = await refunds.create(order["id"], {"amount": "41.37"})
    assert [r["amount"] for r in (first, second, third)] == ["10.00", "20.50", "41.37"]

    refused = await refunds.post(order["id"], {"amount": "0.01"})
    body = _problem(refused, 409, "refund_exceeds_captured")
    assert "0.00 EUR still refundable" in body["detail"]

    await refunds.api.run_jobs()
    assert [r["status"] for r in await refunds.listed(order["id"])] == ["succeeded"] * 3
    order = await refunds.api.get(order["id"])
    assert order["payment"]["refunded"] == str(TOTAL)
    _problem(await refunds.post(order["id"], {"amount": "0.01"}), 409, "refund_exceeds_captured")
    stored_order, rows, names = await stored(refunds.container, order["id"])
    assert stored_order.refunded == sum((r.amount for r in rows), Decimal(0)) == TOTAL
    assert (
        names
        == ["refund.created", "refund.completed"]
        + ["refund.created"] * 2
        + ["refund.completed"] * 2
    )
    assert await provider.refunded_at_provider(order["payment"]["reference"]) == TOTAL


async def test_item_and_shipping_refunds_get_their_computed_amounts(
    refunds: RefundApi,
) -> None:
    order = await refunds.completed_order()
    one_unit = await refunds.create(order["id"], {"items": [{"item_id": "1", "quantity": 1}]})
    assert one_unit["amount"] == "12.00"  # 35.99 / 3 = 11.9966…
    assert one_unit["items"] == [{"item_id": "1", "quantity": 1, "amount": "12.00"}]
    assert one_unit["shipping"] is False

    with_shipping = await refunds.create(
        order["id"], {"items": [{"item_id": "1", "quantity": 1}], "shipping": True}
    )
    # The second unit is what makes two units 23.99; shipping is 9.90 + 1.98.
    assert with_shipping["amount"] == str(Decimal("11.99") + SHIPPING) == "23.87"
    assert with_shipping["shipping"] is True

    rest = await refunds.create(
        order["id"],
        {"items": [{"item_id": "2", "quantity": 1}, {"item_id": "1", "quantity": 1}]},
    )
    assert rest["amount"] == str(ITEM_2_TOTAL + Decimal("12.00")) == "36.00"
    assert [line["amount"] for line in rest["items"]] == ["24.00", "12.00"]

    shipping_only = await refunds.post(order["id"], {"shipping": True})
    assert _problem(shipping_only, 422, "validation_error")["errors"][0]["field"] == "shipping"
    await refunds.api.run_jobs()
    order = await refunds.api.get(order["id"])
    # Every unit and the shipping, refunded in parts: exactly the capture.
    assert order["payment"]["refunded"] == order["payment"]["captured"] == str(TOTAL)
    assert [r["status"] for r in order["refunds"]] == ["succeeded"] * 3


async def test_item_quantities_are_limited_to_what_is_left_of_each_line(
    refunds: RefundApi,
) -> None:
    order = await refunds.completed_order()
    too_many = await refunds.post(order["id"], {"items": [{"item_id": "1", "quantity": 4}]})
    [error] = _problem(too_many, 422, "validation_error")["errors"]
    assert (error["field"], error["code"]) == ("items.0.quantity", "quantity_exceeds_refundable")
    assert error["message"] == "3 of 3 left to refund"

    await refunds.create(order["id"], {"items": [{"item_id": "1", "quantity": 2}]})
    again = await refunds.post(
        order["id"],
        {"items": [{"item_id": "2", "quantity": 1}, {"item_id": "1", "quantity": 2}]},
    )
    [error] = _problem(again, 422, "validation_error")["errors"]
    assert (error["field"], error["message"]) == ("items.1.quantity", "1 of 3 left to refund")

    unknown = await refunds.post(order["id"], {"items": [{"item_id": "9", "quantity": 1}]})
    [error] = _problem(unknown, 422, "validation_error")["errors"]
    assert error["field"] == "items.0.item_id"

    last = await refunds.create(order["id"], {"items": [{"item_id": "1", "quantity": 1}]})
    assert last["amount"] == "12.00"  # 35.99 − 23.99: the units add up to the line
    nothing_left = await refunds.post(order["id"], {"items": [{"item_id": "1", "quantity": 1}]})
    _problem(nothing_left, 422, "validation_error")
    # An amount refund does not take items: the rest of the capture can go that way.
    assert (await refunds.create(order["id"], {"amount": "35.88"}))["amount"] == "35.88"


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"amount": "10.00", "items": [{"item_id": "1", "quantity": 1}]}, "body"),
    ({"amount": "10.00", "shipping": False}, "body"),
    ({}, "body"),
    ({"reason": "no way given"}, "body"),
    ({"amount": "0.00"}, "amount"),
    ({"amount": "-1.00"}, "amount"),
    ({"amount": "1.001"}, "amount"),
    ({"amount": 10.0}, "amount"),
    ({"items": []}, "body"),
    ({"items": [], "shipping": False}, "body"),
    ({"items": [{"item_id": "1", "quantity": 0}]}, "items.0.quantity"),
    ({"items": [{"item_id": "1", "quantity": "1"}]}, "items.0.quantity"),
    ({"items": [{"item_id": "1", "quantity": 1}] * 2}, "body"),
    ({"items": [{"item_id": "01", "quantity": 1}]}, "items.0.item_id"),
    ({"shipping": "yes"}, "shipping"),
    ({"amount": "1.00", "reason": "x" * 256}, "reason"),
    ({"amount": "1.00", "note": "unknown field"}, "note"),
]


async def test_malformed_or_empty_refund_requests_are_422_and_write_nothing(
    refunds: RefundApi,
) -> None:
    order = await refunds.completed_order()
    for body, field in MALFORMED:
        problem = _problem(await refunds.post(order["id"], body), 422, "validation_error")
        assert field in [e["field"] for e in problem["errors"]], (body, problem)
    assert await refunds.listed(order["id"]) == []
    assert await refunds.events(order["id"]) == []


async def test_concurrent_refunds_never_exceed_the_capture(
    refunds: RefundApi, provider: RecordingProvider
) -> None:
    """Ten requests at once, each for 30 % of the capture: exactly three fit. On PostgreSQL
    these are concurrent transactions on separate connections, serialised by the order's
    row lock."""
    order = await refunds.completed_order()
    share = (TOTAL * Decimal("0.3")).quantize(Decimal("0.01"))
    responses = await asyncio.gather(
        *(refunds.post(order["id"], {"amount": str(share)}, key=f"parallel-{n}") for n in range(10))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * 3 + [409] * 7, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            _problem(response, 409, "refund_exceeds_captured")

    await refunds.api.run_jobs()
    order = await refunds.api.get(order["id"])
    assert order["payment"]["refunded"] == str(share * 3)
    stored_order, rows, names = await stored(refunds.container, order["id"])
    assert [r.status for r in rows] == ["succeeded"] * 3
    assert stored_order.refunded == share * 3
    assert sorted(names) == ["refund.completed"] * 3 + ["refund.created"] * 3
    assert len(provider.refund_calls) == 3
    assert await provider.refunded_at_provider(order["payment"]["reference"]) == share * 3


async def test_concurrent_repeats_of_one_idempotency_key_make_one_refund(
    refunds: RefundApi,
) -> None:
    order = await refunds.completed_order()
    responses = await asyncio.gather(
        *(refunds.post(order["id"], {"amount": "5.00"}, key="same") for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [200] * 4 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(await refunds.listed(order["id"])) == 1


async def test_idempotency_key_replays_the_refund_and_refuses_another_body(
    refunds: RefundApi,
) -> None:
    order = await refunds.completed_order()
    first = await refunds.post(order["id"], {"amount": "10.00", "reason": "damaged"}, key="r-1")
    assert first.status_code == 201
    # The same refund, however the amount is spelled.
    again = await refunds.post(order["id"], {"amount": "10.0", "reason": "damaged"}, key="r-1")
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()

    await refunds.api.run_jobs()
    later = await refunds.post(order["id"], {"amount": "10.00", "reason": "damaged"}, key="r-1")
    assert (later.status_code, later.json()["id"], later.json()["status"]) == (
        200,
        first.json()["id"],
        "succeeded",
    )
    for other in ({"amount": "11.00", "reason": "damaged"}, {"amount": "10.00"}):
        _problem(await refunds.post(order["id"], other, key="r-1"), 409, "idempotency_key_reused")

    # Without a key every call is a new refund.
    await refunds.create(order["id"], {"amount": "1.00"})
    await refunds.create(order["id"], {"amount": "1.00"})
    assert len(await refunds.listed(order["id"])) == 3
    _, _, names = await stored(refunds.container, order["id"])
    assert names.count("refund.created") == 3


async def test_only_completed_orders_are_refunded(api: Api, refunds: RefundApi) -> None:
    ready = await api.ready_order(known_order())
    body = _problem(await refunds.post(ready["id"], {"amount": "1.00"}), 409, "order_not_completed")
    assert "READY" in body["detail"]

    assert (await api.accept(ready["id"])).status_code == 200
    body = _problem(await refunds.post(ready["id"], {"amount": "1.00"}), 409, "order_not_completed")
    assert "ACCEPTED" in body["detail"]

    other = await api.ready_order(known_order())
    assert (await api.cancel(other["id"])).status_code == 200
    body = _problem(await refunds.post(other["id"], {"amount": "1.00"}), 409, "order_not_completed")
    assert "CANCELLED" in body["detail"]
    # A cancellation gives the money back by itself: its release is listed with the refunds.
    await api.run_jobs()
    [release] = await refunds.listed(other["id"])
    assert (release["kind"], release["status"], release["amount"]) == (
        "cancellation",
        "succeeded",
        str(TOTAL),
    )
    assert (await api.get(other["id"]))["refunds"] == [release]

    missing = await refunds.post(f"{api.keys.store_id}-999999", {"amount": "1.00"})
    _problem(missing, 404, "order_not_found")
    listed = await refunds.client.get(
        refunds.url(f"{api.keys.store_id}-999999"), headers=api.keys.merchant
    )
    _problem(listed, 404, "order_not_found")


async def test_refund_refused_for_good_fails_and_frees_its_amount_and_items(
    refunds: RefundApi, provider: RecordingProvider, clock: FrozenClock
) -> None:
    order = await refunds.completed_order()
    provider.refuse_refunds = "card_closed"
    refused = await refunds.create(order["id"], {"items": [{"item_id": "2", "quantity": 1}]})
    await refunds.api.run_jobs()
    [failed] = await refunds.listed(order["id"])
    assert (failed["id"], failed["status"]) == (refused["id"], "failed")
    assert failed["failure_reason"].startswith("card_closed")
    assert failed["completed_at"] is not None
    assert await refunds.events(order["id"]) == [
        ("refund.created", refused["id"]),
        ("refund.failed", refused["id"]),
    ]
    assert (await refunds.api.get(order["id"]))["payment"]["refunded"] == "0.00"

    # The failed refund took neither money nor the item's unit.
    provider.refuse_refunds = None
    clock.advance(seconds=1)  # the list is oldest first
    item_refund = await refunds.create(order["id"], {"items": [{"item_id": "2", "quantity": 1}]})
    clock.advance(seconds=1)
    rest = await refunds.create(order["id"], {"amount": str(TOTAL - ITEM_2_TOTAL)})
    await refunds.api.run_jobs()
    order = await refunds.api.get(order["id"])
    assert order["payment"]["refunded"] == str(TOTAL)
    assert [r["status"] for r in order["refunds"]] == ["failed", "succeeded", "succeeded"]
    assert [r["id"] for r in order["refunds"]][1:] == [item_refund["id"], rest["id"]]


async def test_unavailable_provider_is_retried_and_refunds_once(
    refunds: RefundApi, provider: RecordingProvider, clock: FrozenClock
) -> None:
    # pay_flaky: the first call of every operation fails as unavailable.
    order = await refunds.api.new_order(known_order("pay_flaky_refund"))
    await run_until_quiet(refunds.container, clock)
    assert (await refunds.api.accept(order["id"])).status_code == 200
    await run_until_quiet(refunds.container, clock)
    assert (await refunds.api.get(order["id"]))["status"] == "COMPLETED"

    refund = await refunds.create(order["id"], {"amount": "30.00"})
    await refunds.api.run_jobs()
    [waiting] = await refunds.listed(order["id"])
    assert waiting["status"] == "pending"  # the job failed once and waits for its retry
    # Still reserved while it waits.
    _problem(await refunds.post(order["id"], {"amount": "41.88"}), 409, "refund_exceeds_captured")

    await run_until_quiet(refunds.container, clock)
    [done] = await refunds.listed(order["id"])
    assert done["status"] == "succeeded"
    assert [c.idempotency_key for c in provider.refund_calls] == [refund["id"]] * 2
    assert await provider.refunded_at_provider("pay_flaky_refund") == Decimal("30.00")
    assert await refunds.events(order["id"]) == [
        ("refund.created", refund["id"]),
        ("refund.completed", refund["id"]),
    ]
    assert (await refunds.api.get(order["id"]))["payment"]["refunded"] == "30.00"


async def test_refund_the_provider_has_not_paid_out_yet_is_asked_about_again(
    refunds: RefundApi, provider: RecordingProvider, clock: FrozenClock
) -> None:
    order = await refunds.completed_order()
    provider.pending_answers = 1
    refund = await refunds.create(order["id"], {"amount": "5.00"})
    await refunds.api.run_jobs()
    [waiting] = await refunds.listed(order["id"])
    assert waiting["status"] == "pending"
    assert (await refunds.api.get(order["id"]))["payment"]["refunded"] == "0.00"

    clock.advance(minutes=31)
    await refunds.api.run_jobs()
    [done] = await refunds.listed(order["id"])
    assert done["status"] == "succeeded"
    assert [c.idempotency_key for c in provider.refund_calls] == [refund["id"]] * 2
    assert await provider.refunded_at_provider(order["payment"]["reference"]) == Decimal("5.00")
    assert (await refunds.api.get(order["id"]))["payment"]["refunded"] == "5.00"
