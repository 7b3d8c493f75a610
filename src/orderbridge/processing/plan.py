"""Which steps an order goes through. Pure: configuration, payment method, cart and route in,
steps out, in the order they run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from orderbridge.processing.config import ProcessingConfig


class Step(StrEnum):
    PAYMENT = "payment"  # is the money there? (authorised, or funds received)
    PROHIBITED = "prohibited_goods"  # may these items go to this destination?
    FRAUD = "fraud"  # score, then accept / review / reject
    CAPTURE = "capture"  # take the authorised money, as the order becomes READY


@dataclass(frozen=True)
class Route:
    origin: str  # the store's country (an item may carry its own origin)
    destination: str  # the shipping country


def plan_steps(
    config: ProcessingConfig,
    *,
    payment_method: str,
    categories: Iterable[str | None],
    route: Route,
) -> tuple[Step, ...]:
    steps: list[Step] = []
    deferred = payment_method in config.payment.deferred_methods
    if config.payment.enabled:
        steps.append(Step.PAYMENT)
    digital = {c.lower() for c in config.prohibited.digital_categories}
    physical = any((category or "").lower() not in digital for category in categories)
    domestic = route.origin == route.destination
    if (
        config.prohibited.enabled
        and physical
        and (not domestic or config.prohibited.screen_domestic)
    ):
        steps.append(Step.PROHIBITED)
    if config.fraud.enabled:
        steps.append(Step.FRAUD)
    if config.payment.enabled and not deferred:
        # Funds of a deferred method arrive captured; card money is taken only now.
        steps.append(Step.CAPTURE)
    return tuple(steps)
