"""Prohibited goods: which items of an order may not travel from their origin to the
destination, by rules that match HS-code prefixes, categories or SKUs.

A small default rule set ships as data (``prohibited_goods.json``, tabled in
docs/screening.md). It is illustrative, not legal advice: stores add their own rules and
disable defaults in ``ProhibitedConfig``. A non-empty ``find_prohibited`` result cancels the
order with reason ``prohibited_goods``; ``cancellation_note`` names the offending items.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Annotated, Self

import pycountry
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from orderbridge.screening.facts import ItemFacts

ANY_COUNTRY = "*"
_DEFAULT_RULES_FILE = "prohibited_goods.json"


def _country(code: str) -> str:
    code = code.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {code!r}")
    return code


def _destinations(codes: tuple[str, ...]) -> tuple[str, ...]:
    if ANY_COUNTRY in codes:
        if len(codes) > 1:
            raise ValueError('"*" (every destination) stands alone')
        return codes
    return tuple(_country(code) for code in codes)


def _origins(codes: tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if codes is None else tuple(_country(code) for code in codes)


def _hs_prefixes(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    # "93", "9302" and "9302.00" are written in the wild; compare on digits only.
    digits = tuple(prefix.replace(".", "").replace(" ", "") for prefix in prefixes)
    bad = [prefix for prefix, text in zip(prefixes, digits, strict=True) if not _is_hs(text)]
    if bad:
        raise ValueError(f"HS-code prefixes are 2 to 10 digits: {bad}")
    return digits


def _is_hs(text: str) -> bool:
    return text.isascii() and text.isdigit() and 2 <= len(text) <= 10


def _names(values: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(value.strip() for value in values)
    if "" in names:
        raise ValueError("an empty category or SKU matches nothing")
    return names


class ProhibitedRule(BaseModel):
    """Items matching any of ``hs_prefixes``, ``categories`` or ``skus`` may not go to
    ``destinations`` (``["*"]``: anywhere) from ``origins`` (``None``: from anywhere)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=64)]
    description: Annotated[str, Field(min_length=1)]
    destinations: Annotated[tuple[str, ...], Field(min_length=1), AfterValidator(_destinations)]
    origins: Annotated[tuple[str, ...] | None, Field(min_length=1), AfterValidator(_origins)] = None
    hs_prefixes: Annotated[tuple[str, ...], AfterValidator(_hs_prefixes)] = ()
    categories: Annotated[tuple[str, ...], AfterValidator(_names)] = ()
    skus: Annotated[tuple[str, ...], AfterValidator(_names)] = ()
    source: str = ""  # where the rule comes from, or why it exists

    @model_validator(mode="after")
    def _matches_something(self) -> Self:
        if not (self.hs_prefixes or self.categories or self.skus):
            raise ValueError(f"rule {self.id} needs hs_prefixes, categories or skus")
        return self

    def applies_to_route(self, origin: str | None, destination: str) -> bool:
        if ANY_COUNTRY not in self.destinations and destination not in self.destinations:
            return False
        # A rule about an origin cannot be applied to goods of unknown origin.
        return self.origins is None or (origin is not None and origin in self.origins)

    def match(self, item: ItemFacts) -> list[str]:
        """What of ``item`` this rule matches, in words; empty when nothing does."""
        found = []
        hs_code = "".join(ch for ch in item.hs_code or "" if ch.isdigit())
        prefixes = [prefix for prefix in self.hs_prefixes if hs_code.startswith(prefix)]
        if prefixes:
            found.append(f"hs_code {item.hs_code} starts with {max(prefixes, key=len)}")
        found += _listed("category", item.category, self.categories)
        found += _listed("sku", item.sku, self.skus)
        return found


def _listed(field: str, value: str | None, listed: tuple[str, ...]) -> list[str]:
    if value is None:
        return []
    wanted = value.strip().casefold()
    for name in listed:
        if name.casefold() == wanted:
            return [f"{field} {value!r} is listed as {name!r}"]
    return []


def _repeated_ids(rules: Iterable[ProhibitedRule]) -> list[str]:
    counts = Counter(rule.id for rule in rules)
    return sorted(rule_id for rule_id, count in counts.items() if count > 1)


class RuleSet(BaseModel):
    """The packaged default rule file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    disclaimer: str
    rules: tuple[ProhibitedRule, ...]

    @model_validator(mode="after")
    def _ids_unique(self) -> Self:
        if duplicates := _repeated_ids(self.rules):
            raise ValueError(f"rule ids repeat: {duplicates}")
        return self


@lru_cache(maxsize=1)
def load_default_rule_set() -> RuleSet:
    text = resources.files(__package__ or "orderbridge.screening").joinpath(_DEFAULT_RULES_FILE)
    return RuleSet.model_validate(json.loads(text.read_text(encoding="utf-8")))


def load_default_rules() -> tuple[ProhibitedRule, ...]:
    return load_default_rule_set().rules


class ProhibitedConfig(BaseModel):
    """A store's prohibited-goods rules: the defaults (unless ``use_default_rules`` is off)
    plus ``extra_rules``, minus ``disabled_rules``. Rule ids are unique across the set: to
    change a default, disable it and add a rule of your own under another id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    use_default_rules: bool = True
    extra_rules: tuple[ProhibitedRule, ...] = ()
    disabled_rules: frozenset[str] = frozenset()

    @model_validator(mode="after")
    def _ids_known_and_unique(self) -> Self:
        candidates = self._candidates()
        if duplicates := _repeated_ids(candidates):
            raise ValueError(
                f"rule ids repeat (disable the default and pick a new id): {duplicates}"
            )
        unknown = sorted(self.disabled_rules - {rule.id for rule in candidates})
        if unknown:
            raise ValueError(f"disabled_rules names unknown rules: {unknown}")
        return self

    def _candidates(self) -> tuple[ProhibitedRule, ...]:
        defaults = load_default_rules() if self.use_default_rules else ()
        return defaults + self.extra_rules

    def rules(self) -> tuple[ProhibitedRule, ...]:
        """The rules in force."""
        return tuple(rule for rule in self._candidates() if rule.id not in self.disabled_rules)


@dataclass(frozen=True)
class Violation:
    item_id: str
    sku: str
    name: str
    rule_id: str
    matched: str  # e.g. "hs_code 930200 starts with 93"

    def describe(self) -> str:
        return f"item {self.item_id} ({self.sku}, {self.name!r}): {self.rule_id}: {self.matched}"


def find_prohibited(
    items: Sequence[ItemFacts],
    origin: str | None,
    destination: str,
    rules: Iterable[ProhibitedRule],
) -> list[Violation]:
    """Every (item, rule) pair that forbids the route, in item order then rule order.

    ``origin`` is the store's country; an item's own ``origin_country`` takes precedence.
    """
    rules = tuple(rules)
    violations = []
    for item in items:
        item_origin = item.origin_country or origin
        for rule in rules:
            if not rule.applies_to_route(item_origin, destination):
                continue
            if found := rule.match(item):
                if rule.origins is not None:
                    found.append(f"origin {item_origin}")
                violations.append(
                    Violation(item.item_id, item.sku, item.name, rule.id, "; ".join(found))
                )
    return violations


def cancellation_note(violations: Sequence[Violation], destination: str) -> str:
    """The note of a ``prohibited_goods`` cancellation: every offending item and why."""
    lines = "; ".join(violation.describe() for violation in violations)
    return f"Prohibited for shipping to {destination}: {lines}"
