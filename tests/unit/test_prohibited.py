"""Prohibited goods: matching by HS prefix, category and SKU on a route, the rule set
configuration, and the packaged default rules themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orderbridge.screening.facts import ItemFacts
from orderbridge.screening.prohibited import (
    ProhibitedConfig,
    ProhibitedRule,
    Violation,
    cancellation_note,
    find_prohibited,
    load_default_rule_set,
    load_default_rules,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screening.md"
DEFAULTS = load_default_rules()


def item(
    hs_code: str | None = None,
    category: str | None = None,
    sku: str = "SKU-1",
    origin: str | None = None,
    item_id: str = "1",
) -> ItemFacts:
    return ItemFacts(item_id, sku, f"Item {item_id}", 1, hs_code, category, origin)


# ---- the default rules on routes ---------------------------------------------------------

DEFAULT_ROUTES = [
    # (item, store origin, destination, [(rule id, matched)])
    (item("930200"), "FR", "US", [("arms-ammunition", "hs_code 930200 starts with 93")]),
    (item("9302.00"), "FR", "DE", [("arms-ammunition", "hs_code 9302.00 starts with 93")]),
    (item("9401"), "FR", "US", []),
    (item(category="Ammunition"), "FR", "GB",
     [("arms-ammunition", "category 'Ammunition' is listed as 'ammunition'")]),
    (item("360410"), "FR", "US", [("explosives-fireworks", "hs_code 360410 starts with 3604")]),
    (item("360500"), "FR", "US", []),  # matches (for lighting) are not explosives
    (item("293971"), "FR", "US", [("narcotic-drugs", "hs_code 293971 starts with 293971")]),
    (item("293930"), "FR", "US", []),  # caffeine: an alkaloid, not a narcotic
    (item("29394100"), "FR", "CA", [("drug-precursors", "hs_code 29394100 starts with 293941")]),
    (item("010619"), "FR", "AU", [("live-animals-biosecurity", "hs_code 010619 starts with 01")]),
    (item("010619"), "FR", "NZ", [("live-animals-biosecurity", "hs_code 010619 starts with 01")]),
    (item("010619"), "FR", "DE", []),
    (item("020130"), "FR", "AU", []),  # meat is chapter 02
    (item("854340"), "FR", "SG",
     [("e-cigarettes-import-ban", "hs_code 854340 starts with 854340")]),
    (item(category="VAPING"), "FR", "TH",
     [("e-cigarettes-import-ban", "category 'VAPING' is listed as 'vaping'")]),
    (item("854340"), "FR", "MY", []),
    (item("170410"), "FR", "SG", [("chewing-gum-sg", "hs_code 170410 starts with 170410")]),
    (item("170490"), "FR", "SG", []),
    (item("710239"), "RU", "FR",
     [("russian-origin-diamonds", "hs_code 710239 starts with 7102; origin RU")]),
    (item("710239", origin="RU"), "FR", "US",
     [("russian-origin-diamonds", "hs_code 710239 starts with 7102; origin RU")]),
    (item("710239", origin="BE"), "RU", "FR", []),  # the item's own origin wins
    (item("710239"), None, "FR", []),  # unknown origin: an origin rule cannot apply
    (item("710239", origin="RU"), "FR", "CH", []),
    (item("960110"), "FR", "JP", [("ivory", "hs_code 960110 starts with 960110")]),
    (item("610910", "apparel"), "FR", "US", []),
    (item(None, None), "FR", "US", []),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "origin", "destination", "expected"), DEFAULT_ROUTES, ids=str)
def test_default_rules_on_a_route(
    entry: ItemFacts, origin: str | None, destination: str, expected: list[tuple[str, str]]
) -> None:
    found = find_prohibited([entry], origin, destination, DEFAULTS)
    assert [(v.rule_id, v.matched) for v in found] == expected
    assert all((v.item_id, v.sku, v.name) == ("1", "SKU-1", "Item 1") for v in found)


# ---- matching by a custom rule -----------------------------------------------------------

RULE = ProhibitedRule(
    id="custom",
    description="custom",
    destinations=["us", "CA"],
    hs_prefixes=["8471", "85.17"],
    categories=["Knives"],
    skus=["ABC-1"],
)

MATCHING = [
    # (item, destination, matched or None)
    (item("847130"), "US", "hs_code 847130 starts with 8471"),
    (item("8471"), "US", "hs_code 8471 starts with 8471"),
    (item("847"), "US", None),
    (item("851712"), "CA", "hs_code 851712 starts with 8517"),
    (item("847130"), "MX", None),
    (item(category="knives"), "US", "category 'knives' is listed as 'Knives'"),
    (item(category=" KNIVES "), "US", "category ' KNIVES ' is listed as 'Knives'"),
    (item(category="kitchen knives"), "US", None),
    (item(sku="abc-1"), "US", "sku 'abc-1' is listed as 'ABC-1'"),
    (item(sku="ABC-10"), "US", None),
    (item(sku="XABC-1"), "US", None),
    (item("847130", "knives", "ABC-1"), "US",
     "hs_code 847130 starts with 8471; category 'knives' is listed as 'Knives'; "
     "sku 'ABC-1' is listed as 'ABC-1'"),
]  # fmt: skip


@pytest.mark.parametrize(("entry", "destination", "matched"), MATCHING, ids=str)
def test_rule_matches_hs_prefix_on_digits_and_names_exactly(
    entry: ItemFacts, destination: str, matched: str | None
) -> None:
    found = find_prohibited([entry], "FR", destination, [RULE])
    assert [v.matched for v in found] == ([matched] if matched else [])


def test_longest_matching_hs_prefix_is_reported() -> None:
    rule = RULE.model_copy(update={"hs_prefixes": ("84", "847130", "8471")})
    (violation,) = find_prohibited([item("84713000")], "FR", "US", [rule])
    assert violation.matched == "hs_code 84713000 starts with 847130"


def test_origin_rule_needs_a_listed_origin() -> None:
    rule = ProhibitedRule(
        id="origin", description="d", destinations=["*"], origins=["CN", "ru"], categories=["x"]
    )
    assert rule.origins == ("CN", "RU")
    routes = [("CN", True), ("RU", True), ("FR", False), (None, False)]
    for origin, forbidden in routes:
        assert bool(find_prohibited([item(category="x")], origin, "US", [rule])) is forbidden


def test_every_offending_item_and_rule_is_named_in_order() -> None:
    items = [
        item("610910", "apparel", "TEE", item_id="1"),
        item("930320", "firearms", "RIFLE", item_id="2"),
        item("360410", None, "ROCKET", item_id="3"),
    ]
    found = find_prohibited(items, "FR", "US", DEFAULTS)
    assert found == [
        Violation(
            "2",
            "RIFLE",
            "Item 2",
            "arms-ammunition",
            "hs_code 930320 starts with 93; category 'firearms' is listed as 'firearms'",
        ),
        Violation(
            "3", "ROCKET", "Item 3", "explosives-fireworks", "hs_code 360410 starts with 3604"
        ),
    ]
    assert cancellation_note(found, "US") == (
        "Prohibited for shipping to US: "
        "item 2 (RIFLE, 'Item 2'): arms-ammunition: hs_code 930320 starts with 93; "
        "category 'firearms' is listed as 'firearms'; "
        "item 3 (ROCKET, 'Item 3'): explosives-fireworks: hs_code 360410 starts with 3604"
    )


def test_an_item_matching_two_rules_gets_two_violations() -> None:
    extra = ProhibitedRule(id="no-guns-sku", description="d", destinations=["*"], skus=["gun"])
    found = find_prohibited([item("930200", sku="GUN")], "FR", "US", [*DEFAULTS, extra])
    assert [v.rule_id for v in found] == ["arms-ammunition", "no-guns-sku"]


# ---- rule validation ---------------------------------------------------------------------

VALID: dict[str, Any] = {"id": "r1", "description": "d", "destinations": ["*"], "skus": ["X"]}
INVALID_RULES = [
    ({"skus": []}, "needs hs_prefixes, categories or skus"),
    ({"destinations": []}, "at least 1 item"),
    ({"destinations": ["*", "FR"]}, "stands alone"),
    ({"destinations": ["XX"]}, "not an ISO 3166-1 alpha-2 country code: 'XX'"),
    ({"destinations": ["FRA"]}, "not an ISO 3166-1 alpha-2"),
    ({"origins": []}, "at least 1 item"),
    ({"origins": ["*"]}, "not an ISO 3166-1 alpha-2"),
    ({"hs_prefixes": ["9"]}, "2 to 10 digits"),
    ({"hs_prefixes": ["93a"]}, "2 to 10 digits"),
    ({"hs_prefixes": ["12345678901"]}, "2 to 10 digits"),
    ({"categories": [" "]}, "matches nothing"),
    ({"skus": [""]}, "matches nothing"),
    ({"id": "Bad Id"}, "String should match pattern"),
    ({"description": ""}, "at least 1 character"),
    ({"hs_codes": ["93"]}, "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("changes", "message"), INVALID_RULES, ids=str)
def test_invalid_rule_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ProhibitedRule.model_validate({**VALID, **changes})


def test_rule_fields_are_normalised() -> None:
    rule = ProhibitedRule.model_validate(
        {**VALID, "destinations": ["fr", " de"], "hs_prefixes": ["93.02", "01 06"]}
    )
    assert rule.destinations == ("FR", "DE")
    assert rule.hs_prefixes == ("9302", "0106")


# ---- configuration -----------------------------------------------------------------------

MINE = {"id": "mine", "description": "d", "destinations": ["*"], "skus": ["X"]}
CONFIGS = [
    ({}, [rule.id for rule in DEFAULTS]),
    ({"use_default_rules": False}, []),
    ({"use_default_rules": False, "extra_rules": [MINE]}, ["mine"]),
    ({"extra_rules": [MINE]}, [*(rule.id for rule in DEFAULTS), "mine"]),
    (
        {"disabled_rules": ["chewing-gum-sg", "ivory"]},
        [rule.id for rule in DEFAULTS if rule.id not in {"chewing-gum-sg", "ivory"}],
    ),
    (
        {"disabled_rules": ["ivory"], "extra_rules": [{**MINE, "id": "ivory-strict"}]},
        [*(rule.id for rule in DEFAULTS if rule.id != "ivory"), "ivory-strict"],
    ),
    ({"use_default_rules": False, "extra_rules": [MINE], "disabled_rules": ["mine"]}, []),
]


@pytest.mark.parametrize(("data", "rule_ids"), CONFIGS, ids=str)
def test_config_gives_the_rules_in_force(data: dict[str, Any], rule_ids: list[str]) -> None:
    assert [rule.id for rule in ProhibitedConfig.model_validate(data).rules()] == rule_ids


INVALID_CONFIGS = [
    ({"disabled_rules": ["no-such-rule"]}, "unknown rules: \\['no-such-rule'\\]"),
    ({"use_default_rules": False, "disabled_rules": ["ivory"]}, "unknown rules"),
    ({"extra_rules": [{**MINE, "id": "ivory"}]}, "rule ids repeat .*\\['ivory'\\]"),
    ({"extra_rules": [MINE, MINE]}, "rule ids repeat .*\\['mine'\\]"),
    ({"rules": []}, "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("data", "message"), INVALID_CONFIGS, ids=str)
def test_invalid_config_is_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ProhibitedConfig.model_validate(data)


# ---- the packaged default rule set -------------------------------------------------------


def test_default_rule_set_loads_from_the_package_and_is_valid() -> None:
    rule_set = load_default_rule_set()
    assert rule_set.version == 1
    assert "not legal advice" in rule_set.disclaimer
    assert load_default_rules() == rule_set.rules
    assert 5 <= len(rule_set.rules) <= 15  # small on purpose
    ids = [rule.id for rule in rule_set.rules]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("rule", DEFAULTS, ids=lambda rule: rule.id)
def test_every_default_rule_is_explained_and_documented(rule: ProhibitedRule) -> None:
    assert rule.description and len(rule.source) > 20
    assert f"`{rule.id}`" in DOCS.read_text(encoding="utf-8")
