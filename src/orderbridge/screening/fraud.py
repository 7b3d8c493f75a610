"""The fraud score: rules over an order's facts and its velocity counts, each hit explained.

``assess(facts, counts, config)`` runs every configured rule and returns the score, the hits
(rule id, points, a sentence with the numbers, and the compared values as evidence), the
rules it had to skip for want of a fact, and the decision. Pure: the pipeline looks the
counts up first; ``counts_needed(config)`` says which, and ``velocity_value`` what to count by.

Rules (ids; defaults and thresholds in fraud_config and docs/screening.md):

- ``blocklist.{email,domain,ip,address,card}``: a listed identity; rejects outright unless
  ``block_lists.reject`` is turned off, whatever the score.
- ``velocity.{email,ip,card,address}.{window}``: more orders sharing the value within the
  window than its limit (this order included).
- ``amount.high``: total at or above the currency's threshold.
- ``amount.first_order``: the email's first order, at or above a (lower) threshold.
- ``country.{billing_shipping,ip_billing,ip_shipping,card_billing}``: two countries differ.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from orderbridge.screening.facts import OrderFacts
from orderbridge.screening.fraud_config import (
    AmountRule,
    BlockLists,
    CountKey,
    CountryMismatchPoints,
    FraudConfig,
    VelocityDimension,
    VelocityLimit,
    format_window,
)

__all__ = [
    "AmountRule",
    "BlockLists",
    "CountKey",
    "CountryMismatchPoints",
    "CountsNeeded",
    "FraudAssessment",
    "FraudConfig",
    "FraudDecision",
    "RuleHit",
    "SkippedRule",
    "VelocityCounts",
    "VelocityDimension",
    "VelocityLimit",
    "assess",
    "counts_needed",
    "velocity_value",
]

Evidence = Mapping[str, str | int | bool | None]


class FraudDecision(StrEnum):
    ACCEPT = "accept"
    REVIEW = "review"
    REJECT = "reject"  # the order is cancelled with reason fraud_detected


@dataclass(frozen=True)
class RuleHit:
    rule_id: str
    points: int
    explanation: str
    evidence: Evidence = field(default_factory=dict, hash=False)
    rejects: bool = False  # decisive whatever the score (block lists)


@dataclass(frozen=True)
class SkippedRule:
    """A configured rule that could not run, e.g. no IP country was sent."""

    rule_id: str
    reason: str


@dataclass(frozen=True)
class VelocityCounts:
    """What the pipeline looked up before screening.

    ``recent[(dimension, window)]``: earlier orders of the store sharing this order's
    ``velocity_value`` for the dimension, created within ``window`` before this order (this
    order not counted). ``email_orders_ever``: earlier orders of the email, at any time. A
    missing count skips its rule rather than counting as zero.
    """

    recent: Mapping[CountKey, int] = field(default_factory=dict, hash=False)
    email_orders_ever: int | None = None


@dataclass(frozen=True)
class CountsNeeded:
    windows: tuple[CountKey, ...]
    email_history: bool


@dataclass(frozen=True)
class FraudAssessment:
    score: int
    decision: FraudDecision
    hits: tuple[RuleHit, ...]
    skipped: tuple[SkippedRule, ...]
    review_score: int
    reject_score: int

    def explain(self) -> str:
        """One line for a cancellation note or a log: the decision and why."""
        if any(hit.rejects for hit in self.hits):
            why = "block-list hit"
        else:
            why = f"review at {self.review_score}, reject at {self.reject_score}"
        text = f"{self.decision}: score {self.score} ({why})"
        if self.hits:
            text += ". " + "; ".join(
                f"{h.rule_id} (+{h.points}): {h.explanation}" for h in self.hits
            )
        if self.skipped:
            text += ". Skipped: " + "; ".join(f"{s.rule_id}: {s.reason}" for s in self.skipped)
        return text


def counts_needed(config: FraudConfig) -> CountsNeeded:
    """The counts ``assess`` will look for with this configuration."""
    windows = sorted({limit.key for limit in config.velocity if limit.points > 0})
    first = config.first_order_high_amount
    return CountsNeeded(
        windows=tuple(windows),
        email_history=first.points > 0 and bool(first.thresholds or first.default is not None),
    )


def velocity_value(facts: OrderFacts, dimension: VelocityDimension) -> str | None:
    """The value two orders must share to count together in ``dimension``."""
    match dimension:
        case VelocityDimension.EMAIL:
            return facts.email
        case VelocityDimension.CARD:
            return facts.card_fingerprint
        case VelocityDimension.ADDRESS:
            return facts.shipping_address_key
        case VelocityDimension.IP:
            if facts.ip is None:
                return None
            if isinstance(facts.ip, ipaddress.IPv6Address):
                # One IPv6 subscriber usually holds a whole /64 and can rotate within it.
                return str(ipaddress.IPv6Network((facts.ip, 64), strict=False))
            return str(facts.ip)


Outcome = RuleHit | SkippedRule
Check = Callable[[OrderFacts, VelocityCounts, FraudConfig], Iterator[Outcome]]


def _block_lists(facts: OrderFacts, _: VelocityCounts, config: FraudConfig) -> Iterator[Outcome]:
    lists: BlockLists = config.block_lists

    def hit(kind: str, value: str, listed: str) -> RuleHit:
        return RuleHit(
            rule_id=f"blocklist.{kind}",
            points=lists.points,
            explanation=f"{kind} {value} is on the block list"
            + (f" (as {listed})" if listed != value else "")
            + (", which rejects the order" if lists.reject else ""),
            evidence={"value": value, "listed": listed},
            rejects=lists.reject,
        )

    if facts.email in lists.emails:
        yield hit("email", facts.email, facts.email)
    domain = facts.email_domain
    for listed in sorted(lists.domains):
        if domain == listed or domain.endswith(f".{listed}"):
            yield hit("domain", domain, listed)
            break
    if facts.ip is None:
        if lists.ips:
            yield SkippedRule("blocklist.ip", "the order has no IP")
    else:
        for network in lists.ips:
            if facts.ip.version == network.version and facts.ip in network:
                yield hit("ip", str(facts.ip), str(network))
                break
    if facts.shipping_address_key in lists.addresses:
        yield hit("address", facts.shipping_address_key, facts.shipping_address_key)
    card = facts.card_fingerprint
    if card is None:
        if lists.card_fingerprints:
            yield SkippedRule("blocklist.card", "the order has no card fingerprint yet")
    elif card in lists.card_fingerprints:
        yield hit("card", card, card)


def _velocity(facts: OrderFacts, counts: VelocityCounts, config: FraudConfig) -> Iterator[Outcome]:
    for limit in config.velocity:
        if limit.points == 0:
            continue
        value = velocity_value(facts, limit.dimension)
        if value is None:
            yield SkippedRule(limit.rule_id, f"the order has no {limit.dimension} to count by")
            continue
        earlier = counts.recent.get(limit.key)
        if earlier is None:
            yield SkippedRule(limit.rule_id, "no order count was provided for this window")
            continue
        in_window = earlier + 1
        if in_window > limit.limit:
            window = format_window(limit.window)
            yield RuleHit(
                rule_id=limit.rule_id,
                points=limit.points,
                explanation=f"{in_window} orders with {limit.dimension} {value} within {window}"
                f" (this one included), above the limit of {limit.limit}",
                evidence={
                    "dimension": str(limit.dimension),
                    "value": value,
                    "window_seconds": int(limit.window.total_seconds()),
                    "orders_in_window": in_window,
                    "limit": limit.limit,
                },
            )


def _amount(rule_id: str, rule: AmountRule, facts: OrderFacts, what: str) -> Iterator[Outcome]:
    threshold = rule.threshold(facts.currency)
    if threshold is None:
        yield SkippedRule(rule_id, f"no threshold is configured for {facts.currency}")
    elif facts.total >= threshold:
        yield RuleHit(
            rule_id=rule_id,
            points=rule.points,
            explanation=f"{what} total {facts.total} {facts.currency} is at or above"
            f" the threshold of {threshold} {facts.currency}",
            evidence={
                "currency": facts.currency,
                "total": str(facts.total),
                "threshold": str(threshold),
            },
        )


def _amounts(facts: OrderFacts, counts: VelocityCounts, config: FraudConfig) -> Iterator[Outcome]:
    if config.high_amount.points > 0:
        yield from _amount("amount.high", config.high_amount, facts, "order")
    first = config.first_order_high_amount
    if first.points > 0:
        if counts.email_orders_ever is None:
            yield SkippedRule("amount.first_order", "the email's order history was not provided")
        elif counts.email_orders_ever == 0:
            yield from _amount("amount.first_order", first, facts, "first order of the email,")


def _countries(facts: OrderFacts, _: VelocityCounts, config: FraudConfig) -> Iterator[Outcome]:
    countries = {
        "billing": facts.billing_country,
        "shipping": facts.shipping_country,
        "IP": facts.ip_country,
        "card": facts.card_country,
    }
    points: CountryMismatchPoints = config.country_mismatch
    pairs = (
        (points.billing_shipping, "billing", "shipping"),
        (points.ip_billing, "IP", "billing"),
        (points.ip_shipping, "IP", "shipping"),
        (points.card_billing, "card", "billing"),
    )
    for rule_points, first, second in pairs:
        rule_id = f"country.{first.lower()}_{second}"
        one, other = countries[first], countries[second]
        if rule_points == 0:
            continue
        if one is None or other is None:
            yield SkippedRule(rule_id, f"the {first if one is None else second} country is unknown")
        elif one != other:
            yield RuleHit(
                rule_id=rule_id,
                points=rule_points,
                explanation=f"{first} country {one} differs from {second} country {other}",
                evidence={f"{first.lower()}_country": one, f"{second}_country": other},
            )


_CHECKS: tuple[Check, ...] = (_block_lists, _velocity, _amounts, _countries)


def assess(facts: OrderFacts, counts: VelocityCounts, config: FraudConfig) -> FraudAssessment:
    hits: list[RuleHit] = []
    skipped: list[SkippedRule] = []
    for check in _CHECKS:
        for outcome in check(facts, counts, config):
            if isinstance(outcome, RuleHit):
                hits.append(outcome)
            else:
                skipped.append(outcome)
    score = sum(hit.points for hit in hits)
    if any(hit.rejects for hit in hits) or score >= config.reject_score:
        decision = FraudDecision.REJECT
    elif score >= config.review_score:
        decision = FraudDecision.REVIEW
    else:
        decision = FraudDecision.ACCEPT
    return FraudAssessment(
        score=score,
        decision=decision,
        hits=tuple(hits),
        skipped=tuple(skipped),
        review_score=config.review_score,
        reject_score=config.reject_score,
    )
