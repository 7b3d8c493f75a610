"""The order → PushOrder mapping (pure): fields, the note with our id, and the currency
conversion with its rounding residue."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from orderbridge.connectors.mapping import CurrencyMode, MissingExchangeRate, push_order
from orderbridge.connectors.port import PushOrder
from orderbridge.db.models import Order
from orderbridge.demo import sample_order
from orderbridge.orders.document import build_document
from orderbridge.orders.schemas import CheckoutOrder


def stored(payload: dict[str, Any], store_id: str = "310678", number: int = 42) -> Order:
    checkout = CheckoutOrder.model_validate(payload)
    return Order(
        id=number,
        store_id=store_id,
        currency=checkout.currency,
        created_at=datetime(2026, 11, 27, 12, 0, tzinfo=UTC),
        document=build_document(checkout),
    )


def usd_order() -> dict[str, Any]:
    """A USD checkout in a EUR store: 1 EUR = 1.0837 USD. Three units of 19.99 do not
    convert to a whole number of cents, so the parts leave a residue."""
    payload = sample_order(random.Random(3), currency="USD", items=1)
    payload["exchange_rates"] = {"EUR": {"rate": "1.0837"}}
    payload["items"][0].update(
        quantity=3, unit_price="19.99", discount="0.00", tax="11.99", duty="1.01", total="72.97"
    )
    payload["shipping"].update(price="9.90", tax="1.98")
    payload["totals"] = {
        "items": "59.97",
        "discount": "0.00",
        "shipping": "9.90",
        "tax": "13.97",
        "duties": "1.01",
        "total": "84.85",
    }
    payload["customer_note"] = "Leave it with the neighbour"
    return payload


def assert_adds_up(push: PushOrder) -> None:
    totals = push.totals
    assert totals.items == sum(line.unit_price * line.quantity for line in push.lines)
    assert totals.discount == sum(line.discount for line in push.lines)
    assert totals.tax == sum(line.tax for line in push.lines) + push.shipping.tax
    assert totals.shipping == push.shipping.price
    assert totals.total == sum(line.total for line in push.lines) + (
        push.shipping.price + push.shipping.tax
    )
    assert totals.total == (
        totals.items - totals.discount + totals.shipping + totals.tax + totals.duties
    )


def test_buyer_currency_sends_the_order_as_paid() -> None:
    order = stored(usd_order())

    push = push_order(order, base_currency="EUR", mode=CurrencyMode.BUYER)

    assert (push.currency, push.buyer_currency, push.exchange_rate) == ("USD", "USD", 1)
    [line] = push.lines
    assert (line.sku, line.quantity, line.unit_price) == (
        order.document["items"][0]["sku"],
        3,
        Decimal("19.99"),
    )
    assert (line.tax, line.total) == (Decimal("11.99"), Decimal("72.97"))
    assert push.totals.total == Decimal("84.85")
    assert push.totals.duties == Decimal("1.01")
    assert_adds_up(push)


def test_base_currency_converts_with_the_rate_and_puts_the_residue_on_shipping() -> None:
    order = stored(usd_order())

    push = push_order(order, base_currency="EUR", mode=CurrencyMode.BASE)

    assert (push.currency, push.buyer_currency) == ("EUR", "USD")
    assert push.exchange_rate == Decimal("1.0837")
    [line] = push.lines
    # 19.99 / 1.0837 = 18.4460..., 11.99 / 1.0837 = 11.0639..., 1.01 / 1.0837 = 0.9319...
    assert (line.unit_price, line.tax) == (Decimal("18.45"), Decimal("11.06"))
    assert line.total == Decimal("18.45") * 3 + Decimal("11.06") + Decimal("0.93")
    # The total is the buyer's total converted: 84.85 / 1.0837 = 78.2966...
    assert push.totals.total == Decimal("78.30")
    # Parts: line 67.34 + shipping 9.14 (9.1354...) + shipping tax 1.83 = 78.31;
    # the residue of -0.01 comes off the shipping price.
    assert push.shipping.price == Decimal("9.13")
    assert push.shipping.tax == Decimal("1.83")
    assert_adds_up(push)


def test_a_negative_residue_larger_than_shipping_goes_to_the_first_line_discount() -> None:
    payload = usd_order()
    payload["shipping"].update(price="0.00", tax="0.00")
    payload["totals"].update(shipping="0.00", tax="11.99", total="72.97")
    order = stored(payload)

    push = push_order(order, base_currency="EUR", mode=CurrencyMode.BASE)

    # 72.97 / 1.0837 = 67.33, the line's parts make 67.34: one cent of discount.
    assert push.totals.total == Decimal("67.33")
    assert push.shipping.price == 0
    assert push.lines[0].discount == Decimal("0.01")
    assert_adds_up(push)


def test_zero_decimal_base_currency_rounds_to_whole_units() -> None:
    payload = usd_order()
    payload["exchange_rates"] = {"JPY": {"rate": "0.0067"}}
    order = stored(payload)

    push = push_order(order, base_currency="JPY", mode=CurrencyMode.BASE)

    assert push.currency == "JPY"
    assert all(line.unit_price == line.unit_price.to_integral_value() for line in push.lines)
    assert push.totals.total == Decimal("12664")  # 84.85 / 0.0067 = 12664.17...
    assert_adds_up(push)


def test_an_order_without_a_rate_to_the_base_currency_cannot_be_converted() -> None:
    order = stored(usd_order())

    with pytest.raises(MissingExchangeRate, match="GBP"):
        push_order(order, base_currency="GBP", mode=CurrencyMode.BASE)


def test_same_currency_needs_no_rate() -> None:
    payload = sample_order(random.Random(4))  # EUR
    payload["exchange_rates"] = {}
    order = stored(payload)

    push = push_order(order, base_currency="EUR", mode=CurrencyMode.BASE)

    assert (push.currency, push.exchange_rate) == ("EUR", 1)
    assert push.totals.total == Decimal(payload["totals"]["total"])


def test_the_note_carries_our_order_id_and_the_buyers_note() -> None:
    order = stored(usd_order(), store_id="310678", number=936140)

    push = push_order(order, base_currency="USD", mode=CurrencyMode.BASE, source_name="Acme")

    assert push.order_id == "310678-936140"
    assert "310678-936140" in push.note
    assert "Leave it with the neighbour" in push.note
    assert push.customer_note == "Leave it with the neighbour"
    assert push.source_name == "Acme"
    assert push.email == order.document["customer"]["email"]
    assert push.shipping_address.country == order.document["shipping_address"]["country"]
    assert push.payment_reference == order.document["payment"]["reference"]
