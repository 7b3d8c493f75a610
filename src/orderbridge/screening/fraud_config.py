"""The store's fraud configuration: which rules run, their thresholds and their points.

Every field has a documented default (docs/screening.md), so ``FraudConfig()`` is a sane
starting point and a store overrides only what it wants to. The model is frozen and
validated: an impossible configuration (reject below review, a malformed CIDR, an unknown
currency) fails when it is loaded, not when an order is screened.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, NamedTuple, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from orderbridge.money import is_currency
from orderbridge.screening.facts import address_key, normalise_address_key, normalise_email

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Points = Annotated[int, Field(ge=0, le=1000)]


class VelocityDimension(StrEnum):
    """What two orders share for the velocity rules to count them together."""

    EMAIL = "email"
    IP = "ip"
    CARD = "card"
    ADDRESS = "address"


class CountKey(NamedTuple):
    dimension: VelocityDimension
    window: timedelta


def format_window(window: timedelta) -> str:
    """``1h``, ``30m``, ``7d``, ``90s``: the unit is the largest that divides the window."""
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _whole_seconds(window: timedelta) -> timedelta:
    if window <= timedelta(0) or window != timedelta(seconds=int(window.total_seconds())):
        raise ValueError("a window is a positive whole number of seconds")
    return window


class VelocityLimit(_Config):
    """At most ``limit`` orders (this one included) sharing ``dimension`` within ``window``."""

    dimension: VelocityDimension
    window: Annotated[timedelta, AfterValidator(_whole_seconds)]
    limit: Annotated[int, Field(ge=1)]
    points: Points

    @property
    def rule_id(self) -> str:
        return f"velocity.{self.dimension}.{format_window(self.window)}"

    @property
    def key(self) -> CountKey:
        return CountKey(self.dimension, self.window)


def _currencies(thresholds: dict[str, Decimal]) -> dict[str, Decimal]:
    unknown = sorted(code for code in thresholds if not is_currency(code))
    if unknown:
        raise ValueError(f"not ISO 4217 currency codes: {', '.join(unknown)}")
    return thresholds


PositiveAmount = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]


class AmountRule(_Config):
    """Fires when the order total is at or above the threshold for the order's currency.

    ``default`` applies to currencies without their own threshold. It is compared in the
    order's own currency, where one number cannot mean the same in EUR and in JPY, so it is
    off (``None``) unless a store sells in currencies of one scale; without a threshold the
    rule is skipped and the assessment says so.
    """

    points: Points
    thresholds: Annotated[dict[str, PositiveAmount], AfterValidator(_currencies)] = Field(
        default_factory=dict
    )
    default: PositiveAmount | None = None

    def threshold(self, currency: str) -> Decimal | None:
        return self.thresholds.get(currency, self.default)


class CountryMismatchPoints(_Config):
    """Points when two countries of the order differ; 0 turns a comparison off."""

    billing_shipping: Points = 10
    ip_billing: Points = 15
    ip_shipping: Points = 10
    card_billing: Points = 20


def _stripped(values: frozenset[str]) -> frozenset[str]:
    # Provider fingerprints are case-sensitive tokens: compared exactly.
    return frozenset(value.strip() for value in values)


def _emails(values: frozenset[str]) -> frozenset[str]:
    return frozenset(normalise_email(value) for value in values)


def _domains(values: frozenset[str]) -> frozenset[str]:
    domains = frozenset(value.strip().lower().lstrip("@").strip(".") for value in values)
    if "" in domains or any("@" in domain for domain in domains):
        raise ValueError("a blocked domain is a host name such as example.com")
    return domains


def _networks(values: object) -> object:
    # Lenient on purpose: "203.0.113.7" is a /32, and "10.1.2.3/8" means 10.0.0.0/8.
    if isinstance(values, list | tuple | set | frozenset):
        return tuple(
            ipaddress.ip_network(value.strip(), strict=False) if isinstance(value, str) else value
            for value in values
        )
    return values


def _addresses(values: object) -> object:
    # An entry is an address key written by hand, or an address object turned into one.
    if not isinstance(values, list | tuple | set | frozenset):
        return values
    keys = set()
    for value in values:
        if isinstance(value, str):
            keys.add(normalise_address_key(value))
        elif isinstance(value, Mapping):
            keys.add(address_key(value))
        else:
            raise ValueError("a blocked address is an address key or an address object")
    return frozenset(keys)


class BlockLists(_Config):
    """Known-bad identities. A hit adds ``points`` and, with ``reject`` (the default), rejects
    the order whatever its score: a merchant who lists an identity has already decided."""

    points: Points = 100
    reject: bool = True
    emails: Annotated[frozenset[str], AfterValidator(_emails)] = frozenset()
    domains: Annotated[frozenset[str], AfterValidator(_domains)] = frozenset()
    ips: Annotated[tuple[IPNetwork, ...], BeforeValidator(_networks)] = ()
    addresses: Annotated[frozenset[str], BeforeValidator(_addresses)] = frozenset()
    card_fingerprints: Annotated[frozenset[str], AfterValidator(_stripped)] = frozenset()


def _limit(
    dimension: VelocityDimension, window: timedelta, limit: int, points: int
) -> VelocityLimit:
    return VelocityLimit(dimension=dimension, window=window, limit=limit, points=points)


_D = VelocityDimension
_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)

DEFAULT_VELOCITY = (
    _limit(_D.EMAIL, _HOUR, 3, 20),
    _limit(_D.EMAIL, _DAY, 6, 20),
    # Shared IPs (offices, mobile carriers' NAT) are common: looser than per buyer.
    _limit(_D.IP, _HOUR, 5, 15),
    _limit(_D.IP, _DAY, 15, 15),
    _limit(_D.CARD, _HOUR, 3, 25),
    _limit(_D.CARD, _DAY, 6, 25),
    _limit(_D.ADDRESS, _DAY, 5, 15),
)

# Round numbers of roughly the same value; stores tune them to their basket sizes.
DEFAULT_HIGH_AMOUNT = {
    "EUR": Decimal(1000),
    "USD": Decimal(1000),
    "GBP": Decimal(900),
    "CHF": Decimal(1000),
    "CAD": Decimal(1400),
    "AUD": Decimal(1500),
    "JPY": Decimal(150_000),
}
DEFAULT_FIRST_ORDER_AMOUNT = {code: amount / 2 for code, amount in DEFAULT_HIGH_AMOUNT.items()}


class FraudConfig(_Config):
    """A store's fraud rules. Decision: ``reject`` at ``reject_score`` or more (or on a
    block-list hit when ``block_lists.reject``), ``review`` at ``review_score`` or more,
    else ``accept``."""

    review_score: Annotated[int, Field(ge=1)] = 30
    reject_score: Annotated[int, Field(ge=1)] = 70
    velocity: tuple[VelocityLimit, ...] = DEFAULT_VELOCITY
    high_amount: AmountRule = AmountRule(points=20, thresholds=DEFAULT_HIGH_AMOUNT)
    first_order_high_amount: AmountRule = AmountRule(
        points=25, thresholds=DEFAULT_FIRST_ORDER_AMOUNT
    )
    country_mismatch: CountryMismatchPoints = CountryMismatchPoints()
    block_lists: BlockLists = BlockLists()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.reject_score <= self.review_score:
            raise ValueError("reject_score must be greater than review_score")
        keys = [limit.key for limit in self.velocity]
        duplicates = sorted({limit.rule_id for limit in self.velocity if keys.count(limit.key) > 1})
        if duplicates:
            raise ValueError(f"velocity limits repeat a dimension and window: {duplicates}")
        return self
