"""What screening looks at, taken out of the stored order document once, normalised so that
two spellings of the same buyer, mailbox or address compare equal.

The stored document (``orderbridge.orders.document.build_document``) was validated at intake,
so ``facts_from_document`` trusts its shape; a missing required field is a bug upstream and
raises ``KeyError``/``ValueError`` rather than being screened as "unknown".
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The address fields that locate a delivery point. Names, company and phone are left out on
# purpose: the velocity and block-list rules are about the place, and a drop address used by
# many "different" buyers is exactly what they should catch.
_ADDRESS_FIELDS = ("country", "postal_code", "city", "line1", "line2")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class ItemFacts:
    item_id: str
    sku: str
    name: str
    quantity: int
    hs_code: str | None = None
    category: str | None = None
    origin_country: str | None = None


@dataclass(frozen=True)
class OrderFacts:
    """One order as screening sees it. Optional facts are ``None`` when unknown; a rule that
    needs one is then skipped, and the assessment says so."""

    currency: str
    total: Decimal
    email: str  # normalise_email(): lower case, without a +tag
    email_domain: str
    billing_country: str
    shipping_country: str
    shipping_address_key: str  # address_key() of the shipping address
    store_country: str
    items: tuple[ItemFacts, ...] = ()
    ip: IPAddress | None = None
    ip_country: str | None = None  # sent by the checkout; we have no IP-geolocation data
    card_fingerprint: str | None = None  # known after payment confirmation
    card_country: str | None = None  # known after payment confirmation


def normalise_text(text: str) -> str:
    """Case, accents, punctuation and spacing removed: ``"Invalidenstraße 5,"`` and
    ``"INVALIDENSTRASSE  5"`` both become ``"invalidenstrasse 5"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(_NOT_ALNUM.sub(" ", bare).split())


def address_key(address: Mapping[str, object]) -> str:
    """A stable fingerprint of a delivery point: ``COUNTRY|postal|city|street lines``.

    Readable rather than hashed so that a hit can show it and a merchant can put it on a
    block list. Postal codes lose their spaces (``1015 CJ`` = ``1015CJ``); both street lines
    are joined, so a house number moved from line 2 to line 1 changes nothing.
    """
    values = {name: address.get(name) for name in _ADDRESS_FIELDS}
    country = str(values["country"] or "").strip().upper()
    postal = normalise_text(str(values["postal_code"] or "")).replace(" ", "")
    city = normalise_text(str(values["city"] or ""))
    lines = normalise_text(f"{values['line1'] or ''} {values['line2'] or ''}")
    return f"{country}|{postal}|{city}|{lines}"


def normalise_address_key(key: str) -> str:
    """Re-normalise a key written by hand (e.g. in a block list) in ``address_key``'s form."""
    parts = key.split("|")
    if len(parts) != 4:
        raise ValueError("an address key has four parts: COUNTRY|postal code|city|street")
    country, postal, city, lines = parts
    return address_key({"country": country, "postal_code": postal, "city": city, "line1": lines})


def normalise_email(email: str) -> str:
    """Lower case, without a ``+tag`` in the local part: ``Ann+shop@X.com`` → ``ann@x.com``.

    Sub-addressing gives one mailbox endless spellings; velocity and block lists must see
    through it. Provider-specific tricks (Gmail dots) are not undone: they differ by provider.
    """
    local, at, domain = email.strip().lower().rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not an email address: {email!r}")
    local = local.split("+", 1)[0] or local
    return f"{local}@{domain}"


def email_domain(email: str) -> str:
    return email.strip().lower().rpartition("@")[2].rstrip(".")


def parse_ip(value: str) -> IPAddress:
    """An IP address; an IPv4-mapped IPv6 address (``::ffff:203.0.113.7``) becomes the IPv4
    address it carries, so that IPv4 block lists and velocity counts still apply."""
    address = ipaddress.ip_address(value.strip())
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _section(document: Mapping[str, object], name: str) -> Mapping[str, object]:
    section = document.get(name)
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ValueError(f"document field {name!r} is not an object")
    return section


def _optional_text(section: Mapping[str, object], name: str) -> str | None:
    value = section.get(name)
    if value is None or value == "":
        return None
    return str(value)


def _country(section: Mapping[str, object], name: str = "country") -> str | None:
    value = _optional_text(section, name)
    return value.strip().upper() if value is not None else None


def _items(raw: object) -> tuple[ItemFacts, ...]:
    if not isinstance(raw, Sequence):
        raise ValueError("document field 'items' is not a list")
    items = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise ValueError("an item of the document is not an object")
        quantity = entry["quantity"]
        if not isinstance(quantity, int):
            raise ValueError("an item quantity is not an integer")
        items.append(
            ItemFacts(
                item_id=str(entry["id"]),
                sku=str(entry["sku"]),
                name=str(entry["name"]),
                quantity=quantity,
                hs_code=_optional_text(entry, "hs_code"),
                category=_optional_text(entry, "category"),
                origin_country=_country(entry, "origin_country"),
            )
        )
    return tuple(items)


def facts_from_document(
    document: Mapping[str, object],
    *,
    currency: str,
    total: Decimal,
    store_country: str,
    card_fingerprint: str | None = None,
    card_country: str | None = None,
) -> OrderFacts:
    """The facts of a stored order. ``currency`` and ``total`` come from the order's columns,
    the card facts from the payment confirmation (``None`` before it)."""
    customer = _section(document, "customer")
    billing = _section(document, "billing_address")
    shipping = _section(document, "shipping_address")
    client = _section(document, "client")
    email = str(customer["email"])
    ip_text = _optional_text(client, "ip")
    billing_country = _country(billing)
    shipping_country = _country(shipping)
    if billing_country is None or shipping_country is None:
        raise ValueError("billing and shipping addresses need a country")
    return OrderFacts(
        currency=currency,
        total=total,
        email=normalise_email(email),
        email_domain=email_domain(email),
        billing_country=billing_country,
        shipping_country=shipping_country,
        shipping_address_key=address_key(shipping),
        store_country=store_country.strip().upper(),
        items=_items(document.get("items", ())),
        ip=parse_ip(ip_text) if ip_text is not None else None,
        ip_country=_country(client),
        card_fingerprint=card_fingerprint or None,
        card_country=card_country.strip().upper() if card_country else None,
    )
