"""A buyer's region (state, province...) as platforms want it.

Orders carry the region as the buyer gave it: a code (``TX``, ``US-TX``) or a name
(``Texas``). Shopify takes a province code, BigCommerce a state name; ``subdivision``
finds both in ISO 3166-2 (pycountry) for the address's country, or ``None`` when the text
names no subdivision of that country (the connector then sends the text as it is, or
nothing).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import pycountry


@dataclass(frozen=True)
class Subdivision:
    code: str  # without the country prefix: "TX"
    name: str  # "Texas"


def subdivision(country: str, region: str | None) -> Subdivision | None:
    if not region or not region.strip():
        return None
    return _lookup(country.strip().upper(), _plain(region))


@lru_cache(maxsize=1024)
def _lookup(country: str, region: str) -> Subdivision | None:
    prefix = f"{country.casefold()}-"
    wanted = region if region.startswith(prefix) else prefix + region
    # pycountry types the other databases but not this lookup.
    found = pycountry.subdivisions.get(country_code=country)  # type: ignore[no-untyped-call]
    for item in found or ():
        code = str(item.code)
        if code.casefold() == wanted or _plain(str(item.name)) == region:
            return Subdivision(code=code.split("-", 1)[1], name=str(item.name))
    return None


def _plain(text: str) -> str:
    """Case- and accent-insensitive form: "Québec" and "quebec" are one region."""
    decomposed = unicodedata.normalize("NFKD", text.strip())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
