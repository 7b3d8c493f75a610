"""From a stored order to the platform-neutral ``PushOrder`` every connector receives. Pure.

The mapping (docs/plug-and-play.md has the table):

- items by SKU, with name, options, quantity, unit price (net of tax), the line's discount,
  tax and tax rate (a line's total includes its duty, see below);
- customer (email, names, phone), billing and shipping address as the buyer gave them;
- shipping method, carrier, price and tax;
- totals; the payment method and reference; the channel (``source_name``) and a note
  carrying our order id (and the buyer's note, if any).

**Currency.** A connection sends either the buyer's currency (the order as paid, no
conversion) or the store's base currency, converted with the order's exchange rate
(contract §2: base amount = amount / rate), each amount rounded half-even to the base
currency's minor units. Rounding each part separately can leave the parts a few minor units
away from the converted total. That residue is put on the shipping price (a free amount
on every platform, whereas unit prices are checked against catalogues); when shipping
cannot absorb a negative residue, the first line's discount grows by it. So, in the pushed
order, per line ``quantity × unit_price − discount + tax + duty = total`` and
``items − discount + shipping + tax + duties = total`` exactly, with ``total`` the
converted total of what the buyer paid.

Duties: ``PushLine`` has no duty field (few platforms have one); a line's ``total``
includes its duty, and ``PushTotals.duties`` carries the order's, as in the order itself.
A connector whose platform cannot book duties adds them as a fee. ``tax`` never includes
them.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from orderbridge.connectors.port import (
    PushAddress,
    PushLine,
    PushOrder,
    PushRejected,
    PushShipping,
    PushTotals,
    RejectionCode,
)
from orderbridge.db.models import Order
from orderbridge.ids import order_public_id
from orderbridge.money import ZERO, quantum

SOURCE_NAME = "orderbridge"


class CurrencyMode(StrEnum):
    BASE = "base"  # the store's own currency, converted with the order's exchange rate
    BUYER = "buyer"  # the currency the buyer paid in, as paid


class MissingExchangeRate(ValueError):
    """The order carries no rate to the store's base currency: it cannot be converted."""


def push_order(
    order: Order,
    *,
    base_currency: str,
    mode: CurrencyMode,
    source_name: str = SOURCE_NAME,
) -> PushOrder:
    """The order as a connector receives it, in the currency ``mode`` asks for."""
    doc = order.document
    public_id = order_public_id(order.store_id, order.id)
    rate = _rate(order.currency, doc.get("exchange_rates", {}), base_currency, mode)
    currency = order.currency if rate == 1 else base_currency
    convert = _Converter(rate, currency)

    lines = [_line(item, convert) for item in doc["items"]]
    shipping_doc = doc["shipping"]
    shipping_price = convert(shipping_doc["price"])
    shipping_tax = convert(shipping_doc["tax"])
    total = convert(doc["totals"]["total"])
    duties = sum((convert(item["duty"]) for item in doc["items"]), ZERO)

    parts = sum((line.total for line in lines), ZERO) + shipping_price + shipping_tax
    residue = total - parts
    if residue and shipping_price + residue >= 0:
        shipping_price += residue
    elif residue:
        first = lines[0]
        lines[0] = _replace_line(first, discount=first.discount - residue)

    items = sum((line.unit_price * line.quantity for line in lines), ZERO)
    discount = sum((line.discount for line in lines), ZERO)
    tax = sum((line.tax for line in lines), ZERO) + shipping_tax
    customer = doc["customer"]
    note = f"orderbridge order {public_id}"
    if doc.get("customer_note"):
        note += f"\nBuyer's note: {doc['customer_note']}"
    return PushOrder(
        order_id=public_id,
        store_id=order.store_id,
        placed_at=order.created_at,
        currency=currency,
        buyer_currency=order.currency,
        exchange_rate=rate,
        language=doc["language"],
        email=customer["email"],
        first_name=customer["first_name"],
        last_name=customer["last_name"],
        phone=customer.get("phone"),
        billing=_address(doc["billing_address"]),
        shipping_address=_address(doc["shipping_address"]),
        lines=tuple(lines),
        shipping=PushShipping(
            method=shipping_doc["method"],
            carrier=shipping_doc.get("carrier"),
            price=shipping_price,
            tax=shipping_tax,
        ),
        totals=PushTotals(
            items=items,
            discount=discount,
            shipping=shipping_price,
            tax=tax,
            duties=duties,
            total=total,
        ),
        payment_method=doc["payment"]["method"],
        payment_reference=doc["payment"]["reference"],
        source_name=source_name,
        note=note,
        customer_note=doc.get("customer_note"),
    )


def _rate(
    currency: str, rates: Mapping[str, str], base_currency: str, mode: CurrencyMode
) -> Decimal:
    if mode is CurrencyMode.BUYER or base_currency == currency:
        return Decimal(1)
    if base_currency not in rates:
        raise MissingExchangeRate(
            f"the order has no exchange rate from {currency} to the store's {base_currency}"
        )
    return Decimal(rates[base_currency])


class _Converter:
    """Buyer-currency amounts (strings or Decimals) to the push currency, rounded."""

    def __init__(self, rate: Decimal, currency: str) -> None:
        self.rate = rate
        self.step = quantum(currency)

    def __call__(self, amount: str | Decimal) -> Decimal:
        value = Decimal(amount)
        if self.rate != 1:
            value = value / self.rate
        return value.quantize(self.step, rounding=ROUND_HALF_EVEN)


def _line(item: Mapping[str, Any], convert: _Converter) -> PushLine:
    unit_price = convert(item["unit_price"])
    discount = convert(item["discount"])
    tax = convert(item["tax"])
    duty = convert(item["duty"])
    quantity = int(item["quantity"])
    return PushLine(
        sku=item["sku"],
        name=item["name"],
        quantity=quantity,
        unit_price=unit_price,
        discount=discount,
        tax=tax,
        tax_rate=Decimal(item["tax_rate"]),
        total=unit_price * quantity - discount + tax + duty,
        options=dict(item.get("options") or {}),
    )


def _replace_line(line: PushLine, *, discount: Decimal) -> PushLine:
    return PushLine(
        sku=line.sku,
        name=line.name,
        quantity=line.quantity,
        unit_price=line.unit_price,
        discount=discount,
        tax=line.tax,
        tax_rate=line.tax_rate,
        total=line.total + line.discount - discount,
        options=line.options,
    )


def _address(data: Mapping[str, Any]) -> PushAddress:
    return PushAddress(
        first_name=data["first_name"],
        last_name=data["last_name"],
        company=data.get("company"),
        line1=data["line1"],
        line2=data.get("line2"),
        city=data["city"],
        postal_code=data.get("postal_code"),
        region=data.get("region"),
        country=data["country"],
        phone=data.get("phone"),
    )


def require_address_fields(
    order: PushOrder, fields: Mapping[str, str], *, required_by: str | None = None
) -> None:
    """Refuse (``INVALID_ADDRESS``) an order whose billing or shipping address lacks one of
    ``fields`` (the platform's field name -> the ``PushAddress`` attribute it is filled
    from), before any call to a platform that would refuse it less clearly."""
    for kind, address in (("billing", order.billing), ("shipping", order.shipping_address)):
        missing = [
            name for name, attr in fields.items() if not (getattr(address, attr) or "").strip()
        ]
        if missing:
            requires = f": {required_by} requires them" if required_by else ""
            raise PushRejected(
                RejectionCode.INVALID_ADDRESS,
                f"The {kind} address has no {', '.join(missing)}{requires}",
            )
