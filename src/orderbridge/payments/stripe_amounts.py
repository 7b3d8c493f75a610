"""How Stripe counts money, per currency. Pure data; no SDK import.

Stripe's API takes integer amounts in "the currency's smallest unit", but its table is its
own, not ISO 4217's or CLDR's (https://docs.stripe.com/currencies):

- Zero-decimal (exponent 0): BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF.
- Three-decimal (exponent 3): BHD JOD KWD OMR TND, and the last digit must be 0 (amounts are
  multiples of 0.010), "for compatibility with Stripe's payments partners".
- Everything else is two-decimal (exponent 2), including currencies that CLDR, and so
  ``orderbridge.money``, gives 0 digits:
  - ISK: zero-decimal in practice since April 2023, but the API stays two-decimal for
    backwards compatibility and rejects amounts not divisible by 100
    (``invalid_charge_amount_no_decimal_compatible``): 5 ISK is ``500``.
  - HUF, TWD: two-decimal for payments (Stripe only requires whole units for payouts); CLDR
    gives HUF 0 digits, so our HUF amounts are whole and become multiples of 100.
  - IDR, COP, IQD...: two-decimal at Stripe (CLDR says 0); whole amounts times 100.
"""

from __future__ import annotations

from orderbridge.payments.amounts import MinorUnitRule

ZERO_DECIMAL = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})
# Two-decimal in the API, but only whole units are accepted.
WHOLE_UNITS_IN_TWO_DECIMALS = frozenset({"ISK"})


def stripe_rule(currency: str) -> MinorUnitRule:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return MinorUnitRule(0)
    if code in THREE_DECIMAL:
        return MinorUnitRule(3, step=10)
    if code in WHOLE_UNITS_IN_TWO_DECIMALS:
        return MinorUnitRule(2, step=100)
    return MinorUnitRule(2)
