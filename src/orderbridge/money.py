"""Money: ``Decimal`` amounts in a currency's minor-unit precision. Never float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from babel.numbers import get_currency_precision
from pycountry import currencies

ZERO = Decimal(0)


@lru_cache(maxsize=512)
def is_currency(code: str) -> bool:
    return len(code) == 3 and code.isupper() and currencies.get(alpha_3=code) is not None


@lru_cache(maxsize=512)
def minor_units(currency: str) -> int:
    """Digits after the decimal point (EUR 2, JPY 0, KWD 3), from CLDR."""
    return int(get_currency_precision(currency))


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_units(currency))


def fits_currency(amount: Decimal, currency: str) -> bool:
    """True when ``amount`` has no more decimals than the currency's minor unit allows."""
    return amount == amount.quantize(quantum(currency))


def normalize(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_EVEN)


def format_amount(amount: Decimal, currency: str) -> str:
    """The wire form: a string with exactly the currency's minor-unit digits."""
    return str(normalize(amount, currency))
