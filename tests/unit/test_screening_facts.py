"""Screening facts: normalised addresses, emails and IPs, and facts from a stored document."""

from __future__ import annotations

import ipaddress
import random
from decimal import Decimal
from typing import Any

import pytest

from orderbridge.demo import sample_order
from orderbridge.orders.document import build_document
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.screening.facts import (
    ItemFacts,
    address_key,
    email_domain,
    facts_from_document,
    normalise_address_key,
    normalise_email,
    normalise_text,
    parse_ip,
)

OBERKAMPF = {"line1": "12 rue Oberkampf", "city": "Paris", "postal_code": "75011", "country": "FR"}


@pytest.mark.parametrize(
    ("address", "key"),
    [
        pytest.param(OBERKAMPF, "FR|75011|paris|12 rue oberkampf", id="plain"),
        pytest.param(
            {**OBERKAMPF, "line1": "  12,  RUE   Oberkampf. ", "city": "PARIS"},
            "FR|75011|paris|12 rue oberkampf",
            id="case-punctuation-spacing",
        ),
        pytest.param(
            {**OBERKAMPF, "line1": "Rue Oberkampf", "line2": "12"},
            "FR|75011|paris|rue oberkampf 12",
            id="both-lines-joined",
        ),
        pytest.param(
            {"line1": "Invalidenstraße 5", "city": "Berlin", "postal_code": "10115",
             "country": "de"},
            "DE|10115|berlin|invalidenstrasse 5",
            id="eszett-and-lower-case-country",
        ),
        pytest.param(
            {"line1": "Calle de Fuencarral 45", "city": "Málaga", "country": "ES"},
            "ES||malaga|calle de fuencarral 45",
            id="accents-and-no-postal-code",
        ),
        pytest.param(
            {"line1": "Prinsengracht 263", "city": "Amsterdam", "postal_code": "1015 cj",
             "country": "NL"},
            "NL|1015cj|amsterdam|prinsengracht 263",
            id="postal-code-spaces-dropped",
        ),
        pytest.param(
            {**OBERKAMPF, "first_name": "Camille", "company": "ACME", "phone": "+33 1"},
            "FR|75011|paris|12 rue oberkampf",
            id="names-company-phone-ignored",
        ),
    ],
)  # fmt: skip
def test_address_key_normalises_the_delivery_point(address: dict[str, str], key: str) -> None:
    assert address_key(address) == key


def test_address_key_differs_for_another_house_number() -> None:
    assert address_key(OBERKAMPF) != address_key({**OBERKAMPF, "line1": "14 rue Oberkampf"})


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("FR|75011|paris|12 rue oberkampf", "FR|75011|paris|12 rue oberkampf"),
        ("fr|75 011|Paris|12, Rue Oberkampf", "FR|75011|paris|12 rue oberkampf"),
    ],
)
def test_hand_written_address_key_is_normalised(written: str, key: str) -> None:
    assert normalise_address_key(written) == key
    assert normalise_address_key(key) == key


@pytest.mark.parametrize("written", ["FR|75011|paris", "12 rue Oberkampf", "FR|1|2|3|4"])
def test_address_key_without_four_parts_is_refused(written: str) -> None:
    with pytest.raises(ValueError, match="four parts"):
        normalise_address_key(written)


@pytest.mark.parametrize(
    ("email", "normalised", "domain"),
    [
        ("ann@example.com", "ann@example.com", "example.com"),
        ("  Ann@Example.COM ", "ann@example.com", "example.com"),
        ("ann+shop@example.com", "ann@example.com", "example.com"),
        ("ann+a+b@mail.example.com", "ann@mail.example.com", "mail.example.com"),
        ("+only@example.com", "+only@example.com", "example.com"),
        ("first.last@example.com", "first.last@example.com", "example.com"),
    ],
)
def test_email_is_normalised_for_comparison(email: str, normalised: str, domain: str) -> None:
    assert normalise_email(email) == normalised
    assert email_domain(email) == domain


@pytest.mark.parametrize("email", ["", "ann", "ann@", "@example.com"])
def test_malformed_email_is_refused(email: str) -> None:
    with pytest.raises(ValueError, match="not an email"):
        normalise_email(email)


@pytest.mark.parametrize(
    ("text", "ip"),
    [
        ("203.0.113.7", ipaddress.IPv4Address("203.0.113.7")),
        ("::ffff:203.0.113.7", ipaddress.IPv4Address("203.0.113.7")),
        ("2001:db8::1", ipaddress.IPv6Address("2001:db8::1")),
    ],
)
def test_ip_is_parsed_and_ipv4_mapped_addresses_unwrapped(text: str, ip: object) -> None:
    assert parse_ip(text) == ip


def test_normalise_text_is_idempotent() -> None:
    once = normalise_text("  Ça, c'est « la » Rue—Über  ")
    assert once == "ca c est la rue uber"
    assert normalise_text(once) == once


def _document(**changes: Any) -> dict[str, Any]:
    raw = sample_order(random.Random(7), items=2)
    for section, values in changes.items():
        raw[section] = {**raw[section], **values} if isinstance(values, dict) else values
    return build_document(CheckoutOrder.model_validate(raw))


def test_facts_from_a_stored_document() -> None:
    document = _document(
        customer={"email": "Ann+Promo@Example.com"},
        billing_address={"country": "DE", "city": "Berlin", "line1": "Invalidenstraße 5",
                         "postal_code": "10115"},
        shipping_address={"country": "FR", "city": "Paris", "line1": "12, rue Oberkampf",
                          "line2": None, "postal_code": "75011"},
        client={"ip": "::ffff:198.51.100.4"},
    )  # fmt: skip
    document["client"]["country"] = "be"  # the checkout's IP country, not yet in the schema
    facts = facts_from_document(
        document,
        currency="EUR",
        total=Decimal("120.50"),
        store_country="fr",
        card_fingerprint="fp_123",
        card_country="nl",
    )
    assert (facts.currency, facts.total) == ("EUR", Decimal("120.50"))
    assert (facts.email, facts.email_domain) == ("ann@example.com", "example.com")
    assert (facts.billing_country, facts.shipping_country) == ("DE", "FR")
    assert facts.shipping_address_key == "FR|75011|paris|12 rue oberkampf"
    assert facts.store_country == "FR"
    assert facts.ip == ipaddress.IPv4Address("198.51.100.4")
    assert facts.ip_country == "BE"
    assert (facts.card_fingerprint, facts.card_country) == ("fp_123", "NL")
    expected = [
        ItemFacts(
            item_id=item["id"],
            sku=item["sku"],
            name=item["name"],
            quantity=item["quantity"],
            hs_code=item["hs_code"],
            category=item["category"],
            origin_country=item["origin_country"],
        )
        for item in document["items"]
    ]
    assert list(facts.items) == expected
    assert [item.item_id for item in facts.items] == ["1", "2"]


def test_optional_facts_are_none_when_the_checkout_did_not_send_them() -> None:
    document = _document(client={"ip": None})
    document["items"][0].update(hs_code=None, category=None, origin_country=None)
    facts = facts_from_document(document, currency="EUR", total=Decimal(1), store_country="FR")
    assert facts.ip is None and facts.ip_country is None
    assert facts.card_fingerprint is None and facts.card_country is None
    first = facts.items[0]
    assert (first.hs_code, first.category, first.origin_country) == (None, None, None)


def test_document_without_client_section_has_no_ip() -> None:
    document = _document()
    del document["client"]
    facts = facts_from_document(document, currency="EUR", total=Decimal(1), store_country="FR")
    assert facts.ip is None
