"""The sums a checkout order must satisfy (pure)."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from orderbridge.demo import sample_order
from orderbridge.orders.arithmetic import check_order_sums
from orderbridge.orders.schemas import CheckoutOrder


def _check(payload: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e.path, e.code) for e in check_order_sums(CheckoutOrder.model_validate(payload))]


@pytest.fixture
def payload() -> dict[str, Any]:
    return sample_order(random.Random(3), items=2)


def test_sample_orders_add_up(payload: dict[str, Any]) -> None:
    for seed in range(50):
        assert _check(sample_order(random.Random(seed))) == []


@pytest.mark.parametrize("field", ["items", "discount", "shipping", "tax", "duties", "total"])
def test_each_wrong_total_is_named(payload: dict[str, Any], field: str) -> None:
    broken = copy.deepcopy(payload)
    broken["totals"][field] = "9999.99"
    assert (f"totals.{field}", "sum_mismatch") in _check(broken)


def test_wrong_item_total_is_named_with_its_index(payload: dict[str, Any]) -> None:
    payload["items"][1]["total"] = "0.01"
    assert ("items.1.total", "sum_mismatch") in _check(payload)


def test_amounts_finer_than_the_currency_minor_unit_are_refused(payload: dict[str, Any]) -> None:
    payload["shipping"]["price"] = "9.901"
    assert ("shipping.price", "amount_precision") in _check(payload)


def test_yen_amounts_have_no_decimals() -> None:
    order = sample_order(random.Random(1), currency="JPY", items=1)
    item = order["items"][0]
    item["unit_price"] = "29.90"
    assert ("items.0.unit_price", "amount_precision") in _check(order)
    item.update(
        unit_price="3000", discount="0", tax="0", duty="0", total=str(3000 * item["quantity"])
    )
    order["shipping"].update(price="900", tax="0")
    order["totals"] = {
        "items": item["total"],
        "discount": "0",
        "shipping": "900",
        "tax": "0",
        "duties": "0",
        "total": str(3000 * item["quantity"] + 900),
    }
    assert _check(order) == []


def test_discount_larger_than_the_line_is_refused(payload: dict[str, Any]) -> None:
    item = payload["items"][0]
    item["discount"] = "100000.00"
    assert ("items.0.discount", "discount_too_large") in _check(payload)


def test_every_broken_sum_is_listed_at_once(payload: dict[str, Any]) -> None:
    payload["totals"]["items"] = "1.00"
    payload["totals"]["tax"] = "1.00"
    payload["items"][0]["total"] = "1.00"
    paths = {path for path, _ in _check(payload)}
    assert {"totals.items", "totals.tax", "items.0.total"} <= paths
