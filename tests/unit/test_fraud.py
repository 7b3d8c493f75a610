"""The fraud rules, table by table: each fires at its boundary and not below it, points add
up, the decision follows the thresholds, and a rule without its fact is skipped, visibly."""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from orderbridge.screening.facts import OrderFacts
from orderbridge.screening.fraud import (
    CountKey,
    FraudAssessment,
    FraudConfig,
    FraudDecision,
    VelocityCounts,
    VelocityDimension,
    assess,
    counts_needed,
    velocity_value,
)

D = VelocityDimension
H1, D1 = timedelta(hours=1), timedelta(days=1)
ACCEPT, REVIEW, REJECT = FraudDecision.ACCEPT, FraudDecision.REVIEW, FraudDecision.REJECT

# A quiet, domestic, returning buyer: no default rule fires.
BASE = OrderFacts(
    currency="EUR",
    total=Decimal("100.00"),
    email="ann@example.com",
    email_domain="example.com",
    billing_country="FR",
    shipping_country="FR",
    shipping_address_key="FR|75011|paris|12 rue oberkampf",
    store_country="FR",
    ip=ipaddress.ip_address("203.0.113.7"),
    ip_country="FR",
    card_fingerprint="fp_abc",
    card_country="FR",
)
DEFAULT = FraudConfig()
ALL_WINDOWS = {key: 0 for key in counts_needed(DEFAULT).windows}


def facts(**changes: Any) -> OrderFacts:
    return dataclasses.replace(BASE, **changes)


def counts(
    recent: dict[tuple[VelocityDimension, timedelta], int] | None = None, ever: int | None = 3
) -> VelocityCounts:
    return VelocityCounts(
        recent={**ALL_WINDOWS, **{CountKey(*key): n for key, n in (recent or {}).items()}},
        email_orders_ever=ever,
    )


def hit_ids(assessment: FraudAssessment) -> list[str]:
    return [hit.rule_id for hit in assessment.hits]


def skipped_ids(assessment: FraudAssessment) -> list[str]:
    return [skip.rule_id for skip in assessment.skipped]


def test_quiet_order_is_accepted_with_no_hits_and_nothing_skipped() -> None:
    assessment = assess(BASE, counts(), DEFAULT)
    assert (assessment.score, assessment.decision) == (0, ACCEPT)
    assert assessment.hits == () and assessment.skipped == ()


# ---- velocity ----------------------------------------------------------------------------

# The defaults, written out: (rule id, dimension, window, earlier orders, fires?, points).
VELOCITY = [
    ("velocity.email.1h", D.EMAIL, H1, 2, False, 20),
    ("velocity.email.1h", D.EMAIL, H1, 3, True, 20),
    ("velocity.email.1d", D.EMAIL, D1, 5, False, 20),
    ("velocity.email.1d", D.EMAIL, D1, 6, True, 20),
    ("velocity.ip.1h", D.IP, H1, 4, False, 15),
    ("velocity.ip.1h", D.IP, H1, 5, True, 15),
    ("velocity.ip.1d", D.IP, D1, 14, False, 15),
    ("velocity.ip.1d", D.IP, D1, 15, True, 15),
    ("velocity.card.1h", D.CARD, H1, 2, False, 25),
    ("velocity.card.1h", D.CARD, H1, 3, True, 25),
    ("velocity.card.1d", D.CARD, D1, 5, False, 25),
    ("velocity.card.1d", D.CARD, D1, 6, True, 25),
    ("velocity.address.1d", D.ADDRESS, D1, 4, False, 15),
    ("velocity.address.1d", D.ADDRESS, D1, 5, True, 15),
]


@pytest.mark.parametrize(
    ("rule_id", "dimension", "window", "earlier", "fires", "points"),
    VELOCITY,
    ids=[f"{row[0]}-{row[3]}-earlier" for row in VELOCITY],
)
def test_velocity_rule_fires_above_its_limit(
    rule_id: str, dimension: D, window: timedelta, earlier: int, fires: bool, points: int
) -> None:
    assessment = assess(BASE, counts({(dimension, window): earlier}), DEFAULT)
    assert hit_ids(assessment) == ([rule_id] if fires else [])
    assert assessment.score == (points if fires else 0)


def test_velocity_hit_explains_the_count_and_the_limit() -> None:
    (hit,) = assess(BASE, counts({(D.EMAIL, H1): 4}), DEFAULT).hits
    assert hit.explanation == (
        "5 orders with email ann@example.com within 1h (this one included), above the limit of 3"
    )
    assert hit.evidence == {
        "dimension": "email",
        "value": "ann@example.com",
        "window_seconds": 3600,
        "orders_in_window": 5,
        "limit": 3,
    }


@pytest.mark.parametrize(
    ("changes", "skipped", "reason"),
    [
        ({"card_fingerprint": None}, ["velocity.card.1h", "velocity.card.1d"], "no card"),
        ({"ip": None}, ["velocity.ip.1h", "velocity.ip.1d"], "no ip"),
    ],
)
def test_velocity_without_the_fact_is_skipped(
    changes: dict[str, Any], skipped: list[str], reason: str
) -> None:
    assessment = assess(facts(**changes), counts(), DEFAULT)
    assert [s for s in skipped_ids(assessment) if s.startswith("velocity")] == skipped
    assert all(reason in s.reason for s in assessment.skipped if s.rule_id in skipped)


def test_velocity_without_a_count_is_skipped_not_taken_as_zero() -> None:
    recent = {key: 0 for key in ALL_WINDOWS if key != (D.ADDRESS, D1)}
    assessment = assess(BASE, VelocityCounts(recent=recent, email_orders_ever=3), DEFAULT)
    (skip,) = assessment.skipped
    assert skip.rule_id == "velocity.address.1d" and "no order count" in skip.reason


@pytest.mark.parametrize(
    ("changes", "dimension", "value"),
    [
        ({}, D.EMAIL, "ann@example.com"),
        ({}, D.CARD, "fp_abc"),
        ({}, D.ADDRESS, "FR|75011|paris|12 rue oberkampf"),
        ({}, D.IP, "203.0.113.7"),
        ({"ip": ipaddress.ip_address("2001:db8:1:2:aaaa::1")}, D.IP, "2001:db8:1:2::/64"),
        ({"ip": None}, D.IP, None),
        ({"card_fingerprint": None}, D.CARD, None),
    ],
)
def test_velocity_value_is_what_orders_share(
    changes: dict[str, Any], dimension: D, value: str | None
) -> None:
    assert velocity_value(facts(**changes), dimension) == value


def test_counts_needed_lists_every_configured_window_and_the_email_history() -> None:
    needed = counts_needed(DEFAULT)
    assert set(needed.windows) == {
        (D.EMAIL, H1), (D.EMAIL, D1), (D.IP, H1), (D.IP, D1),
        (D.CARD, H1), (D.CARD, D1), (D.ADDRESS, D1),
    }  # fmt: skip
    assert needed.email_history is True


def test_counts_needed_leaves_out_disabled_rules() -> None:
    config = FraudConfig(
        velocity=[
            {"dimension": "email", "window": 600, "limit": 2, "points": 10},
            {"dimension": "ip", "window": 600, "limit": 2, "points": 0},
        ],
        first_order_high_amount={"points": 0},
    )
    needed = counts_needed(config)
    assert needed.windows == ((D.EMAIL, timedelta(minutes=10)),)
    assert needed.email_history is False


# ---- amounts -----------------------------------------------------------------------------

AMOUNTS = [
    # (currency, total, earlier orders of the email, hits)
    ("EUR", "999.99", 3, []),
    ("EUR", "1000.00", 3, ["amount.high"]),
    ("JPY", "149999", 3, []),
    ("JPY", "150000", 3, ["amount.high"]),
    ("GBP", "900.00", 3, ["amount.high"]),
    ("EUR", "499.99", 0, []),
    ("EUR", "500.00", 0, ["amount.first_order"]),
    ("EUR", "500.00", 1, []),
    ("EUR", "1000.00", 0, ["amount.high", "amount.first_order"]),
    ("USD", "500", 0, ["amount.first_order"]),
]


@pytest.mark.parametrize(("currency", "total", "ever", "hits"), AMOUNTS, ids=str)
def test_amount_rules_fire_at_their_threshold(
    currency: str, total: str, ever: int, hits: list[str]
) -> None:
    assessment = assess(facts(currency=currency, total=Decimal(total)), counts(ever=ever), DEFAULT)
    assert hit_ids(assessment) == hits
    points = {"amount.high": 20, "amount.first_order": 25}
    assert assessment.score == sum(points[hit] for hit in hits)


def test_amount_hit_names_total_and_threshold() -> None:
    (hit,) = assess(facts(total=Decimal("1200.00")), counts(), DEFAULT).hits
    assert hit.explanation == ("order total 1200.00 EUR is at or above the threshold of 1000 EUR")
    assert hit.evidence == {"currency": "EUR", "total": "1200.00", "threshold": "1000"}


def test_currency_without_threshold_skips_the_amount_rules() -> None:
    assessment = assess(facts(currency="SEK", total=Decimal("99999")), counts(ever=0), DEFAULT)
    assert hit_ids(assessment) == []
    assert skipped_ids(assessment) == ["amount.high", "amount.first_order"]
    assert all("no threshold is configured for SEK" in s.reason for s in assessment.skipped)


def test_default_threshold_applies_to_unlisted_currencies() -> None:
    config = FraudConfig(high_amount={"points": 20, "thresholds": {}, "default": "5000"})
    below = assess(facts(currency="SEK", total=Decimal("4999.99")), counts(), config)
    at = assess(facts(currency="SEK", total=Decimal("5000")), counts(), config)
    assert (hit_ids(below), hit_ids(at)) == ([], ["amount.high"])


def test_first_order_rule_without_history_is_skipped() -> None:
    assessment = assess(facts(total=Decimal("900")), counts(ever=None), DEFAULT)
    assert skipped_ids(assessment) == ["amount.first_order"]
    assert "order history" in assessment.skipped[0].reason


# ---- countries ---------------------------------------------------------------------------

COUNTRIES = [
    # (billing, shipping, IP, card, hits)
    ("FR", "FR", "FR", "FR", []),
    ("FR", "DE", "FR", "FR", ["country.billing_shipping", "country.ip_shipping"]),
    ("FR", "FR", "DE", "FR", ["country.ip_billing", "country.ip_shipping"]),
    ("FR", "DE", "DE", "FR", ["country.billing_shipping", "country.ip_billing"]),
    ("FR", "FR", "FR", "US", ["country.card_billing"]),
    (
        "FR", "DE", "US", "GB",
        ["country.billing_shipping", "country.ip_billing", "country.ip_shipping",
         "country.card_billing"],
    ),
]  # fmt: skip
COUNTRY_POINTS = {
    "country.billing_shipping": 10,
    "country.ip_billing": 15,
    "country.ip_shipping": 10,
    "country.card_billing": 20,
}


@pytest.mark.parametrize(("billing", "shipping", "ip", "card", "hits"), COUNTRIES, ids=str)
def test_country_mismatch_rules(
    billing: str, shipping: str, ip: str, card: str, hits: list[str]
) -> None:
    changes = {"billing_country": billing, "shipping_country": shipping}
    order = facts(**changes, ip_country=ip, card_country=card)
    assessment = assess(order, counts(), DEFAULT)
    assert hit_ids(assessment) == hits
    assert assessment.score == sum(COUNTRY_POINTS[hit] for hit in hits)


def test_country_hit_names_both_countries() -> None:
    (hit,) = assess(facts(card_country="US"), counts(), DEFAULT).hits
    assert hit.explanation == "card country US differs from billing country FR"
    assert hit.evidence == {"card_country": "US", "billing_country": "FR"}


@pytest.mark.parametrize(
    ("changes", "skipped"),
    [
        ({"ip_country": None}, ["country.ip_billing", "country.ip_shipping"]),
        ({"card_country": None}, ["country.card_billing"]),
        (
            {"ip_country": None, "card_country": None, "shipping_country": "DE"},
            ["country.ip_billing", "country.ip_shipping", "country.card_billing"],
        ),
    ],
)
def test_unknown_country_skips_its_comparisons_and_says_so(
    changes: dict[str, Any], skipped: list[str]
) -> None:
    assessment = assess(facts(**changes), counts(), DEFAULT)
    assert skipped_ids(assessment) == skipped
    assert all("country is unknown" in s.reason for s in assessment.skipped)
    assert not any(hit.rule_id in skipped for hit in assessment.hits)


def test_zero_points_turn_a_comparison_off_without_skipping_it() -> None:
    config = FraudConfig(country_mismatch={"billing_shipping": 0})
    assessment = assess(facts(shipping_country="DE", ip_country=None), counts(), config)
    assert "country.billing_shipping" not in hit_ids(assessment) + skipped_ids(assessment)


# ---- block lists -------------------------------------------------------------------------

BLOCKED = FraudConfig(
    block_lists={
        "emails": ["Mallory+anything@Example.com"],
        "domains": ["@evil.test", "spam.example."],
        "ips": ["198.51.100.0/24", "2001:db8:bad::/48", "192.0.2.9"],
        "addresses": [
            "FR|75011|Paris|13, rue Oberkampf",
            {"line1": "Invalidenstraße 5", "city": "Berlin", "postal_code": "10115",
             "country": "DE"},
        ],
        "card_fingerprints": ["FP_STOLEN"],
    }
)  # fmt: skip
BLOCK_LIST = [
    ({"email": "mallory@example.com"}, "blocklist.email"),
    ({"email_domain": "evil.test"}, "blocklist.domain"),
    ({"email_domain": "mx.evil.test"}, "blocklist.domain"),
    ({"email_domain": "spam.example"}, "blocklist.domain"),
    ({"email_domain": "notevil.test"}, None),
    ({"email_domain": "evil.test.com"}, None),
    ({"ip": ipaddress.ip_address("198.51.100.0")}, "blocklist.ip"),
    ({"ip": ipaddress.ip_address("198.51.100.255")}, "blocklist.ip"),
    ({"ip": ipaddress.ip_address("198.51.101.0")}, None),
    ({"ip": ipaddress.ip_address("192.0.2.9")}, "blocklist.ip"),
    ({"ip": ipaddress.ip_address("192.0.2.10")}, None),
    ({"ip": ipaddress.ip_address("2001:db8:bad:ffff::1")}, "blocklist.ip"),
    ({"ip": ipaddress.ip_address("2001:db8:bae::1")}, None),
    ({"shipping_address_key": "FR|75011|paris|13 rue oberkampf"}, "blocklist.address"),
    ({"shipping_address_key": "DE|10115|berlin|invalidenstrasse 5"}, "blocklist.address"),
    ({"card_fingerprint": "FP_STOLEN"}, "blocklist.card"),
    ({"card_fingerprint": "fp_stolen"}, None),  # fingerprints are case-sensitive tokens
    ({"card_fingerprint": "fp_other"}, None),
]


@pytest.mark.parametrize(("changes", "rule_id"), BLOCK_LIST, ids=str)
def test_block_list_hit_rejects_whatever_the_score(
    changes: dict[str, Any], rule_id: str | None
) -> None:
    assessment = assess(facts(**changes), counts(), BLOCKED)
    if rule_id is None:
        assert (hit_ids(assessment), assessment.decision) == ([], ACCEPT)
    else:
        (hit,) = assessment.hits
        assert (hit.rule_id, hit.points, hit.rejects) == (rule_id, 100, True)
        assert assessment.decision is REJECT
        assert "is on the block list" in hit.explanation


@pytest.mark.parametrize(
    ("changes", "skipped"),
    [({"ip": None}, "blocklist.ip"), ({"card_fingerprint": None}, "blocklist.card")],
)
def test_block_list_without_the_fact_is_skipped(changes: dict[str, Any], skipped: str) -> None:
    assessment = assess(facts(**changes), counts(), BLOCKED)
    assert skipped in skipped_ids(assessment)
    assert (hit_ids(assessment), assessment.decision) == ([], ACCEPT)


def test_empty_block_lists_skip_nothing() -> None:
    assessment = assess(facts(ip=None, card_fingerprint=None), counts(), DEFAULT)
    assert not [s for s in skipped_ids(assessment) if s.startswith("blocklist")]


def test_block_list_hit_says_what_was_listed() -> None:
    (hit,) = assess(facts(email_domain="mx.evil.test"), counts(), BLOCKED).hits
    assert hit.explanation == (
        "domain mx.evil.test is on the block list (as evil.test), which rejects the order"
    )
    assert hit.evidence == {"value": "mx.evil.test", "listed": "evil.test"}


def test_block_list_rejects_even_with_few_points() -> None:
    config = BLOCKED.model_copy(
        update={"block_lists": BLOCKED.block_lists.model_copy(update={"points": 1})}
    )
    assessment = assess(facts(email="mallory@example.com"), counts(), config)
    assert (assessment.score, assessment.decision) == (1, REJECT)
    assert assessment.explain().startswith("reject: score 1 (block-list hit)")


@pytest.mark.parametrize(("points", "decision"), [(10, ACCEPT), (30, REVIEW), (70, REJECT)])
def test_block_list_without_reject_only_adds_points(points: int, decision: FraudDecision) -> None:
    config = FraudConfig(
        block_lists={"emails": ["mallory@example.com"], "reject": False, "points": points}
    )
    assessment = assess(facts(email="mallory@example.com"), counts(), config)
    assert (assessment.score, assessment.decision) == (points, decision)
    assert assessment.hits[0].rejects is False
    assert "rejects" not in assessment.hits[0].explanation


def test_several_block_lists_each_report_a_hit() -> None:
    order = facts(email="mallory@example.com", card_fingerprint="FP_STOLEN")
    assessment = assess(order, counts(), BLOCKED)
    assert hit_ids(assessment) == ["blocklist.email", "blocklist.card"]
    assert assessment.score == 200


# ---- scores and decisions ----------------------------------------------------------------


def test_points_of_every_hit_add_up() -> None:
    order = facts(total=Decimal("1500.00"), shipping_country="DE", ip_country="DE")
    recent = {(D.EMAIL, H1): 3, (D.EMAIL, D1): 6, (D.CARD, H1): 3}
    assessment = assess(order, counts(recent, ever=0), DEFAULT)
    assert hit_ids(assessment) == [
        "velocity.email.1h",
        "velocity.email.1d",
        "velocity.card.1h",
        "amount.high",
        "amount.first_order",
        "country.billing_shipping",
        "country.ip_billing",
    ]
    assert assessment.score == 20 + 20 + 25 + 20 + 25 + 10 + 15 == 135
    assert assessment.decision is REJECT


def _single_rule_config(points: int) -> FraudConfig:
    # Only the billing/shipping comparison scores, with the points under test.
    return FraudConfig(
        velocity=[],
        high_amount={"points": 0},
        first_order_high_amount={"points": 0},
        country_mismatch={"billing_shipping": points, "ip_billing": 0, "ip_shipping": 0,
                          "card_billing": 0},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("points", "decision"),
    [(0, ACCEPT), (29, ACCEPT), (30, REVIEW), (69, REVIEW), (70, REJECT), (500, REJECT)],
)
def test_decision_at_the_thresholds(points: int, decision: FraudDecision) -> None:
    assessment = assess(facts(shipping_country="DE"), counts(), _single_rule_config(points))
    assert (assessment.score, assessment.decision) == (points, decision)
    assert (assessment.review_score, assessment.reject_score) == (30, 70)


def test_explain_names_decision_score_and_every_hit() -> None:
    order = facts(shipping_country="DE", card_country="US", ip_country=None)
    assessment = assess(order, counts(), DEFAULT)
    assert assessment.explain() == (
        "review: score 30 (review at 30, reject at 70). "
        "country.billing_shipping (+10): billing country FR differs from shipping country DE; "
        "country.card_billing (+20): card country US differs from billing country FR. "
        "Skipped: country.ip_billing: the IP country is unknown; "
        "country.ip_shipping: the IP country is unknown"
    )


def test_explain_of_a_quiet_order() -> None:
    assert assess(BASE, counts(), DEFAULT).explain() == (
        "accept: score 0 (review at 30, reject at 70)"
    )


# ---- configuration -----------------------------------------------------------------------

INVALID_CONFIGS = [
    ({"review_score": 70, "reject_score": 70}, "reject_score must be greater"),
    ({"review_score": 0}, "greater than or equal to 1"),
    ({"velocity": [{"dimension": "email", "window": 3600, "limit": 0, "points": 5}]},
     "greater than or equal to 1"),
    ({"velocity": [{"dimension": "email", "window": 0, "limit": 1, "points": 5}]},
     "positive whole number of seconds"),
    ({"velocity": [{"dimension": "email", "window": 1.5, "limit": 1, "points": 5}]},
     "positive whole number of seconds"),
    ({"velocity": [{"dimension": "phone", "window": 60, "limit": 1, "points": 5}]},
     "'email', 'ip', 'card' or 'address'"),
    ({"velocity": [{"dimension": "ip", "window": "PT1H", "limit": 2, "points": 5},
                   {"dimension": "ip", "window": 3600, "limit": 9, "points": 5}]},
     "repeat a dimension and window: \\['velocity.ip.1h'\\]"),
    ({"velocity": [{"dimension": "ip", "window": 60, "limit": 1, "points": -1}]},
     "greater than or equal to 0"),
    ({"high_amount": {"points": 20, "thresholds": {"EURO": "10", "XXY": "1"}}},
     "not ISO 4217 currency codes: EURO, XXY"),
    ({"high_amount": {"points": 20, "thresholds": {"EUR": "0"}}}, "greater than 0"),
    ({"high_amount": {"points": 20, "default": "-5"}}, "greater than 0"),
    ({"block_lists": {"ips": ["10.0.0.300/8"]}}, "does not appear to be an IPv4 or IPv6"),
    ({"block_lists": {"emails": ["not-an-email"]}}, "not an email address"),
    ({"block_lists": {"domains": ["ann@example.com"]}}, "host name"),
    ({"block_lists": {"addresses": ["12 rue Oberkampf"]}}, "four parts"),
    ({"block_lists": {"addresses": [42]}}, "address key or an address object"),
    ({"reveiw_score": 40}, "Extra inputs are not permitted"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "message"), INVALID_CONFIGS, ids=str)
def test_invalid_config_is_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FraudConfig.model_validate(data)


def test_config_round_trips_through_json() -> None:
    config = BLOCKED.model_copy(update={"review_score": 25})
    assert FraudConfig.model_validate_json(config.model_dump_json()) == config


def test_config_accepts_iso_durations_and_seconds() -> None:
    config = FraudConfig.model_validate(
        {"velocity": [{"dimension": "card", "window": "PT30M", "limit": 2, "points": 5},
                      {"dimension": "card", "window": 604800, "limit": 9, "points": 5}]}
    )  # fmt: skip
    assert [limit.rule_id for limit in config.velocity] == ["velocity.card.30m", "velocity.card.7d"]


def test_defaults_are_documented_values() -> None:
    assert (DEFAULT.review_score, DEFAULT.reject_score) == (30, 70)
    assert DEFAULT.high_amount.threshold("EUR") == Decimal(1000)
    assert DEFAULT.first_order_high_amount.threshold("EUR") == Decimal(500)
    assert DEFAULT.high_amount.threshold("SEK") is None
    assert (DEFAULT.block_lists.points, DEFAULT.block_lists.reject) == (100, True)
