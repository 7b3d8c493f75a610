"""Between order amounts (``Decimal`` in the currency's precision) and a provider's integer
minor units. Pure.

Providers do not all count the way ISO 4217 / CLDR does (Stripe's table is in
``stripe_amounts``), so a provider describes its unit per currency as a ``MinorUnitRule``:
the exponent it counts in, and the step its amounts must be a multiple of. Conversion never
rounds: an amount the provider cannot express is refused (``AmountNotRepresentable``),
because rounding a capture or a refund silently moves the buyer's money.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from orderbridge.money import fits_currency, minor_units, quantum
from orderbridge.payments.port import AmountNotRepresentable


@dataclass(frozen=True)
class MinorUnitRule:
    exponent: int  # amount × 10^exponent is the integer the provider's API takes
    step: int = 1  # the provider's amounts must be multiples of this (in its minor units)


def iso_rule(currency: str) -> MinorUnitRule:
    """The currency's own minor unit (CLDR digits, as ``orderbridge.money`` uses)."""
    return MinorUnitRule(minor_units(currency))


def to_minor_units(amount: Decimal, currency: str, rule: MinorUnitRule | None = None) -> int:
    """``Decimal("49.90"), "EUR"`` → ``4990``. Raises ``AmountNotRepresentable`` instead of
    rounding, and for negative amounts (no port operation moves a negative amount)."""
    rule = rule or iso_rule(currency)
    if not amount.is_finite() or amount < 0:
        raise AmountNotRepresentable(f"{amount} {currency} is not a payable amount")
    scaled = amount.scaleb(rule.exponent)
    if scaled != scaled.to_integral_value():
        raise AmountNotRepresentable(
            f"{amount} {currency} has more decimals than the provider's unit (10^-{rule.exponent})"
        )
    units = int(scaled)
    if units % rule.step:
        smallest = Decimal(rule.step).scaleb(-rule.exponent)
        raise AmountNotRepresentable(
            f"{amount} {currency} is not a multiple of {smallest}, the provider's smallest step"
        )
    return units


def from_minor_units(units: int, currency: str, rule: MinorUnitRule | None = None) -> Decimal:
    """``1200, "JPY"`` → ``Decimal("1200")``. The result has the currency's own precision
    when it fits (Stripe's ``150000`` HUF cents are ``1500`` forints); an amount finer than
    the currency (a provider holding fractional forints) is kept exact, not rounded."""
    rule = rule or iso_rule(currency)
    amount = Decimal(units).scaleb(-rule.exponent)
    if fits_currency(amount, currency):
        return amount.quantize(quantum(currency))
    return amount
