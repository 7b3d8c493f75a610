"""Fixtures of the payment-provider contract suite: one ``Checkout`` per provider, which
plays the buyer's checkout (it creates payments the way a real checkout would) and reads the
provider's own record, so the suite can check what really happened to the money.

- ``test``: the deterministic provider; references chosen from its table.
- ``stripe``: ``StripePaymentProvider`` against localstripe on loopback (started once per
  session); the checkout creates and confirms PaymentIntents with the official SDK.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

import httpx
import pytest
import stripe

from orderbridge.payments.amounts import from_minor_units, to_minor_units
from orderbridge.payments.port import PaymentProvider
from orderbridge.payments.stripe_amounts import stripe_rule
from orderbridge.payments.stripe_provider import StripeConfig, StripePaymentProvider
from orderbridge.payments.test_provider import TestPaymentProvider
from tests.support.localstripe import API_KEY, free_loopback_port, start_localstripe


@dataclass(frozen=True)
class Record:
    """What the provider itself has on file for a payment."""

    provider_status: str
    captured: Decimal
    refunded: Decimal
    refunds: int


class Checkout(Protocol):
    name: str
    provider: PaymentProvider
    # localstripe has no ``amount_received`` and books the released rest of a partial
    # capture as a refund, so a provider cannot tell what was captured.
    reports_partial_capture: bool

    async def authorized(self, amount: Decimal, currency: str) -> str: ...
    async def declined(self, amount: Decimal, currency: str) -> str: ...
    async def requires_action(self, amount: Decimal, currency: str) -> str: ...
    async def authenticated(self, amount: Decimal, currency: str) -> str: ...
    async def record(self, reference: str, currency: str) -> Record: ...
    def unreachable(self) -> tuple[PaymentProvider, str]: ...
    async def close(self) -> None: ...


class TestProviderCheckout:
    __test__ = False
    name = "test"
    reports_partial_capture = True

    def __init__(self) -> None:
        self._provider = TestPaymentProvider()
        self.provider: PaymentProvider = self._provider

    async def _created(self, prefix: str, amount: Decimal, currency: str) -> str:
        # The test provider's "checkout" is the first status call: it creates the payment.
        reference = f"{prefix}_{uuid.uuid4().hex[:12]}" if prefix != "pay_decline" else prefix
        await self.provider.status(reference, amount=amount, currency=currency)
        return reference

    async def authorized(self, amount: Decimal, currency: str) -> str:
        return await self._created("pay_ok", amount, currency)

    async def declined(self, amount: Decimal, currency: str) -> str:
        return await self._created("pay_decline", amount, currency)

    async def requires_action(self, amount: Decimal, currency: str) -> str:
        return await self._created("pay_3ds", amount, currency)

    async def authenticated(self, amount: Decimal, currency: str) -> str:
        return await self._created("pay_3ds_ok", amount, currency)

    async def record(self, reference: str, currency: str) -> Record:
        payment = self._provider._payments[reference]  # the provider's own memory
        return Record(
            provider_status=str(payment.state),
            captured=payment.captured,
            refunded=payment.refunded,
            refunds=len(payment.refunds),
        )

    def unreachable(self) -> tuple[PaymentProvider, str]:
        return self.provider, "pay_unavailable"

    async def close(self) -> None:
        await self.provider.aclose()


class StripeCheckout:
    name = "stripe"
    reports_partial_capture = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.provider: PaymentProvider = StripePaymentProvider(
            StripeConfig(API_KEY, api_base=url, timeout_seconds=5, max_network_retries=0)
        )
        self._http = stripe.HTTPXClient(timeout=5)
        self.client = stripe.StripeClient(
            API_KEY,
            base_addresses={"api": url},
            http_client=self._http,
            max_network_retries=0,
        )
        self._unreachable: list[StripePaymentProvider] = []

    async def _intent(self, amount: Decimal, currency: str, payment_method: str) -> str:
        intent = await self.client.v1.payment_intents.create_async(
            {
                "amount": to_minor_units(amount, currency, stripe_rule(currency)),
                "currency": currency.lower(),
                "payment_method": payment_method,
                "capture_method": "manual",
            }
        )
        return intent.id

    async def authorized(self, amount: Decimal, currency: str) -> str:
        reference = await self._intent(amount, currency, "pm_card_visa")
        intent = await self.client.v1.payment_intents.confirm_async(reference)
        assert intent.status == "requires_capture"
        return reference

    async def declined(self, amount: Decimal, currency: str) -> str:
        # localstripe declines charges of 4000000000000341 (pm_card_chargeCustomerFail);
        # its pm_card_visa_chargeDeclined only declines attaching to a customer.
        reference = await self._intent(amount, currency, "pm_card_chargeCustomerFail")
        with pytest.raises(stripe.CardError):
            await self.client.v1.payment_intents.confirm_async(reference)
        return reference

    async def requires_action(self, amount: Decimal, currency: str) -> str:
        method = await self.client.v1.payment_methods.create_async(
            {
                "type": "card",
                "card": {
                    "number": "4000002500003155",
                    "exp_month": 12,
                    "exp_year": 2034,
                    "cvc": "123",
                },
            }
        )
        reference = await self._intent(amount, currency, method.id)
        intent = await self.client.v1.payment_intents.confirm_async(reference)
        assert intent.status == "requires_action"
        return reference

    async def authenticated(self, amount: Decimal, currency: str) -> str:
        reference = await self.requires_action(amount, currency)
        intent = await self.client.v1.payment_intents.retrieve_async(reference)
        # localstripe's stand-in for the buyer passing the challenge in Stripe.js (not a
        # Stripe API; plain HTTP with the publishable-key style it expects).
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.post(
                f"{self.url}/v1/payment_intents/{reference}/_authenticate",
                data={
                    "key": "pk_test_orderbridge",
                    "client_secret": intent.client_secret,
                    "success": "true",
                },
            )
        answer.raise_for_status()
        return reference

    async def record(self, reference: str, currency: str) -> Record:
        intent = (
            await self.client.v1.payment_intents.retrieve_async(
                reference, {"expand": ["latest_charge"]}
            )
        ).to_dict()
        refunds = (
            await self.client.v1.refunds.list_async({"payment_intent": reference, "limit": 100})
        ).to_dict()["data"]
        charge = intent.get("latest_charge") or {}
        rule = stripe_rule(currency)
        captured = charge.get("amount", 0) if charge.get("captured") else 0
        return Record(
            provider_status=intent["status"],
            captured=from_minor_units(captured, currency, rule),
            refunded=from_minor_units(sum(r["amount"] for r in refunds), currency, rule),
            refunds=len(refunds),
        )

    def unreachable(self) -> tuple[PaymentProvider, str]:
        closed = f"http://127.0.0.1:{free_loopback_port()}"  # nothing listens there
        provider = StripePaymentProvider(
            StripeConfig(API_KEY, api_base=closed, timeout_seconds=2, max_network_retries=0)
        )
        self._unreachable.append(provider)
        return provider, "pi_unreachable"

    async def close(self) -> None:
        await self.provider.aclose()
        for provider in self._unreachable:
            await provider.aclose()
        await self._http.close_async()


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    server = start_localstripe(timeout=20)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(params=["test", "stripe"])
async def checkout(request: pytest.FixtureRequest) -> AsyncIterator[Checkout]:
    made: Checkout
    if request.param == "stripe":
        made = StripeCheckout(request.getfixturevalue("localstripe_url"))
    else:
        made = TestProviderCheckout()
    yield made
    await made.close()
