"""The sums a checkout order must satisfy, checked exactly in ``Decimal``. Pure.

Conventions (documented in docs/api.md): prices are net of tax; per item
``total = quantity × unit_price − discount + tax + duty``; the order's
``totals.total = items − discount + shipping + tax + duties`` where ``totals.tax`` includes
the shipping tax. ``tax_rate`` is informational and not re-derived (checkouts round taxes
in different ways).
"""

from __future__ import annotations

from decimal import Decimal

from orderbridge.errors import FieldError
from orderbridge.money import ZERO, fits_currency
from orderbridge.orders.schemas import CheckoutOrder


def check_order_sums(order: CheckoutOrder) -> list[FieldError]:
    currency = order.currency
    errors: list[FieldError] = []

    def precision(path: str, amount: Decimal) -> None:
        if not fits_currency(amount, currency):
            errors.append(
                FieldError(
                    path,
                    f"{currency} amounts have at most the currency's minor-unit digits",
                    "amount_precision",
                )
            )

    def equal(path: str, stated: Decimal, expected: Decimal, what: str) -> None:
        if stated != expected:
            errors.append(
                FieldError(path, f"is {stated} but {what} gives {expected}", "sum_mismatch")
            )

    gross_items = discount = tax = duties = ZERO
    for index, item in enumerate(order.items):
        base = f"items.{index}"
        for field in ("unit_price", "discount", "tax", "duty", "total"):
            precision(f"{base}.{field}", getattr(item, field))
        line = item.unit_price * item.quantity
        if item.discount > line:
            errors.append(
                FieldError(f"{base}.discount", "exceeds the line amount", "discount_too_large")
            )
        equal(
            f"{base}.total",
            item.total,
            line - item.discount + item.tax + item.duty,
            "quantity × unit_price − discount + tax + duty",
        )
        gross_items += line
        discount += item.discount
        tax += item.tax
        duties += item.duty

    precision("shipping.price", order.shipping.price)
    precision("shipping.tax", order.shipping.tax)
    totals = order.totals
    for field in ("items", "discount", "shipping", "tax", "duties", "total"):
        precision(f"totals.{field}", getattr(totals, field))
    equal("totals.items", totals.items, gross_items, "the sum of quantity × unit_price")
    equal("totals.discount", totals.discount, discount, "the sum of item discounts")
    equal("totals.shipping", totals.shipping, order.shipping.price, "shipping.price")
    equal("totals.tax", totals.tax, tax + order.shipping.tax, "item taxes + shipping.tax")
    equal("totals.duties", totals.duties, duties, "the sum of item duties")
    equal(
        "totals.total",
        totals.total,
        totals.items - totals.discount + totals.shipping + totals.tax + totals.duties,
        "items − discount + shipping + tax + duties",
    )
    if order.currency in order.exchange_rates and order.exchange_rates[order.currency].rate != 1:
        errors.append(
            FieldError(
                f"exchange_rates.{order.currency}.rate",
                "the transaction currency converts to itself at 1",
                "invalid_rate",
            )
        )
    return errors
