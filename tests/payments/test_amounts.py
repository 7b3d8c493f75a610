"""Decimal ↔ provider minor units: ISO/CLDR exponents and Stripe's own table."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderbridge.payments.amounts import MinorUnitRule, from_minor_units, to_minor_units
from orderbridge.payments.port import AmountNotRepresentable
from orderbridge.payments.stripe_amounts import stripe_rule


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [
        (Decimal("49.90"), "EUR", 4990),
        (Decimal("0.01"), "EUR", 1),
        (Decimal("1200"), "JPY", 1200),
        (Decimal("5.125"), "KWD", 5125),
        (Decimal("0.00"), "EUR", 0),
    ],
)
def test_iso_minor_units_round_trip(amount: Decimal, currency: str, units: int) -> None:
    assert to_minor_units(amount, currency) == units
    assert from_minor_units(units, currency) == amount
    assert str(from_minor_units(units, currency)) == str(amount)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [(Decimal("0.005"), "EUR"), (Decimal("1.5"), "JPY"), (Decimal("-1.00"), "EUR")],
)
def test_amounts_finer_than_the_unit_or_negative_are_refused(
    amount: Decimal, currency: str
) -> None:
    with pytest.raises(AmountNotRepresentable):
        to_minor_units(amount, currency)


def test_non_finite_amounts_are_refused() -> None:
    with pytest.raises(AmountNotRepresentable):
        to_minor_units(Decimal("NaN"), "EUR")


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [
        (Decimal("49.90"), "EUR", 4990),
        (Decimal("1200"), "JPY", 1200),  # zero-decimal
        (Decimal("5000"), "UGX", 5000),  # zero-decimal at Stripe too
        (Decimal("12000"), "KRW", 12000),
        (Decimal("5.120"), "KWD", 5120),  # three-decimal, last digit 0
        (Decimal("5.13"), "BHD", 5130),
        (Decimal("5"), "ISK", 500),  # zero-decimal in fact, two-decimal in the API
        (Decimal("1500"), "HUF", 150000),  # CLDR 0 digits, Stripe two-decimal
        (Decimal("10000"), "IDR", 1000000),
        (Decimal("99.50"), "TWD", 9950),
    ],
)
def test_stripe_units(amount: Decimal, currency: str, units: int) -> None:
    rule = stripe_rule(currency)

    assert to_minor_units(amount, currency, rule) == units
    assert from_minor_units(units, currency, rule) == amount


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        (Decimal("5.125"), "KWD"),  # Stripe wants multiples of 0.010
        (Decimal("0.001"), "TND"),
        (Decimal("5.5"), "ISK"),  # only whole krónur
    ],
)
def test_stripe_refuses_amounts_it_cannot_take(amount: Decimal, currency: str) -> None:
    with pytest.raises(AmountNotRepresentable):
        to_minor_units(amount, currency, stripe_rule(currency))


def test_stripe_rule_reads_lower_case_codes_as_stripe_sends_them() -> None:
    assert stripe_rule("jpy") == MinorUnitRule(0)
    assert stripe_rule("kwd") == MinorUnitRule(3, step=10)


def test_amount_finer_than_the_currency_is_kept_exact() -> None:
    # A payment of 1500.50 HUF made elsewhere: reported exactly, not rounded to 1500 or 1501.
    assert from_minor_units(150050, "HUF", stripe_rule("HUF")) == Decimal("1500.50")
