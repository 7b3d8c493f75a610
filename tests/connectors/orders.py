"""Orders to push: a realistic ``PushOrder`` whose amounts add up, for every connector test.

The default order: two lines (one discounted), 20 % VAT, a taxed shipping line, a
cross-border buyer (French address, EUR checkout) in a store whose base currency is USD.
``push_order(currency="EUR")`` is the same order in the buyer's currency: unit prices are
converted with the exchange rate and rounded to cents first, and every total is then
recomputed from them, so the totals stay consistent as ``connectors.mapping`` keeps them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from orderbridge.connectors.port import (
    PushAddress,
    PushLine,
    PushOrder,
    PushShipping,
    PushTotals,
)

CENT = Decimal("0.01")
BASE_CURRENCY = "USD"
BUYER_CURRENCY = "EUR"
EXCHANGE_RATE = Decimal("0.9215")  # EUR per USD

# (sku, name, quantity, unit price in the base currency, line discount in the base currency)
DEFAULT_LINES: tuple[tuple[str, str, int, Decimal, Decimal], ...] = (
    ("TSHIRT-RED-M", "T-shirt red M", 2, Decimal("25.00"), Decimal("5.00")),
    ("MUG-BLUE", "Mug blue", 1, Decimal("12.50"), Decimal("0.00")),
)
TAX_RATE = Decimal("20")
SHIPPING_PRICE = Decimal("8.00")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def new_order_id() -> str:
    return f"{uuid.uuid4()}-{uuid.uuid4().int % 10_000:04d}"


def address(**overrides: str | None) -> PushAddress:
    fields: dict[str, str | None] = {
        "first_name": "Camille",
        "last_name": "Durand",
        "company": None,
        "line1": "12 rue de la Paix",
        "line2": "3e étage",
        "city": "Paris",
        "postal_code": "75002",
        "region": None,
        "country": "FR",
        "phone": "+33612345678",
    }
    fields.update(overrides)
    return PushAddress(**fields)  # type: ignore[arg-type]


def push_order(
    *,
    order_id: str | None = None,
    lines: Sequence[tuple[str, int]] | None = None,
    currency: str = BASE_CURRENCY,
    shipping_address: PushAddress | None = None,
    email: str = "camille.durand@example.fr",
) -> PushOrder:
    """A consistent order. ``lines`` as (sku, quantity) replaces the default SKUs and
    quantities (prices and discounts are taken from the default lines in turn);
    ``currency`` is the base (USD) or the buyer's (EUR)."""
    rate = Decimal(1) if currency == BASE_CURRENCY else EXCHANGE_RATE
    chosen = (
        [
            (sku, DEFAULT_LINES[i % 2][1], quantity, *DEFAULT_LINES[i % 2][3:])
            for i, (sku, quantity) in enumerate(lines)
        ]
        if lines is not None
        else list(DEFAULT_LINES)
    )
    push_lines = []
    for sku, name, quantity, base_price, base_discount in chosen:
        unit_price = cents(base_price * rate)
        discount = cents(base_discount * rate)
        tax = cents((unit_price * quantity - discount) * TAX_RATE / 100)
        push_lines.append(
            PushLine(
                sku=sku,
                name=name,
                quantity=quantity,
                unit_price=unit_price,
                discount=discount,
                tax=tax,
                tax_rate=TAX_RATE,
                total=unit_price * quantity - discount + tax,
            )
        )
    shipping_price = cents(SHIPPING_PRICE * rate)
    shipping = PushShipping(
        method="Standard international",
        carrier="La Poste",
        price=shipping_price,
        tax=cents(shipping_price * TAX_RATE / 100),
    )
    items = sum((line.unit_price * line.quantity for line in push_lines), Decimal("0.00"))
    discount = sum((line.discount for line in push_lines), Decimal("0.00"))
    tax = sum((line.tax for line in push_lines), shipping.tax)
    totals = PushTotals(
        items=items,
        discount=discount,
        shipping=shipping.price,
        tax=tax,
        duties=Decimal("0.00"),
        total=items - discount + shipping.price + tax,
    )
    our_id = order_id or new_order_id()
    billing = address()
    return PushOrder(
        order_id=our_id,
        store_id="store-1",
        placed_at=datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
        currency=currency,
        buyer_currency=BUYER_CURRENCY,
        exchange_rate=EXCHANGE_RATE if currency == BASE_CURRENCY else Decimal(1),
        language="fr",
        email=email,
        first_name=billing.first_name,
        last_name=billing.last_name,
        phone=billing.phone,
        billing=billing,
        shipping_address=shipping_address or billing,
        lines=tuple(push_lines),
        shipping=shipping,
        totals=totals,
        payment_method="card",
        payment_reference="pi_3QexampleCapture",
        source_name="orderbridge",
        note=f"orderbridge order {our_id}",
        customer_note="Leave at the door, please",
    )
