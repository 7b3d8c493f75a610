"""Which payment providers this process offers, built once from configuration by the
composition root. An order names its provider (checkout ``payment.provider``); processing
asks ``PaymentProviders.get`` for it.

Adding a provider (docs/payments.md has the whole recipe): write ``<name>_provider.py`` with
a class that satisfies ``PaymentProvider``, give it a config dataclass if it needs one, add
one entry to ``PROVIDERS`` below, and add it to the contract suite's parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orderbridge.payments.port import PaymentProvider, PaymentRejected
from orderbridge.payments.stripe_provider import StripeConfig, StripePaymentProvider
from orderbridge.payments.test_provider import TestPaymentProvider


class PaymentsMisconfigured(ValueError):
    """Raised at start-up: a provider is enabled without the settings it needs."""


class UnknownPaymentProvider(PaymentRejected):
    """The order names a provider this process does not offer (or may not use for it)."""

    code = "unknown_payment_provider"


@dataclass(frozen=True)
class PaymentsConfig:
    enabled: tuple[str, ...] = ("test",)  # the embedded default: demos need no account
    stripe: StripeConfig | None = None
    # The test provider approves any payment. Orders from live checkouts may not use it
    # unless an operator says so (a staging system fed with "live" orders).
    test_provider_for_live_orders: bool = False


@dataclass(frozen=True)
class ProviderSpec:
    build: Callable[[PaymentsConfig], PaymentProvider]
    takes_real_money: bool  # may serve orders with environment "live"


def _test(config: PaymentsConfig) -> PaymentProvider:
    return TestPaymentProvider()


def _stripe(config: PaymentsConfig) -> PaymentProvider:
    if config.stripe is None or not config.stripe.api_key:
        raise PaymentsMisconfigured("the stripe provider is enabled without an API key")
    return StripePaymentProvider(config.stripe)


PROVIDERS: dict[str, ProviderSpec] = {
    "test": ProviderSpec(_test, takes_real_money=False),
    "stripe": ProviderSpec(_stripe, takes_real_money=True),
}


class PaymentProviders:
    """The providers of one process, by name."""

    def __init__(
        self,
        providers: Mapping[str, PaymentProvider],
        *,
        live: frozenset[str],
    ) -> None:
        self._providers = dict(providers)
        self._live = live

    def names(self) -> tuple[str, ...]:
        return tuple(self._providers)

    def get(self, name: str, *, environment: str = "live") -> PaymentProvider:
        """The provider for an order. Intake should refuse orders whose provider is not
        in ``names()``; here the answer is permanent, so the order fails."""
        provider = self._providers.get(name)
        if provider is None:
            raise UnknownPaymentProvider(f"payment provider {name!r} is not enabled")
        if environment == "live" and name not in self._live:
            raise UnknownPaymentProvider(f"payment provider {name!r} does not take live orders")
        return provider

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()


def build_payment_providers(config: PaymentsConfig) -> PaymentProviders:
    providers: dict[str, PaymentProvider] = {}
    live: set[str] = set()
    for name in config.enabled:
        spec = PROVIDERS.get(name)
        if spec is None:
            known = ", ".join(sorted(PROVIDERS))
            raise PaymentsMisconfigured(f"unknown payment provider {name!r} (known: {known})")
        providers[name] = spec.build(config)
        if spec.takes_real_money or (name == "test" and config.test_provider_for_live_orders):
            live.add(name)
    return PaymentProviders(providers, live=frozenset(live))
