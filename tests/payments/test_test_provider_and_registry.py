"""The test provider's table (what the contract suite does not cover) and the registry."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderbridge.payments.port import (
    PaymentNotFound,
    PaymentProvider,
    PaymentRejected,
    PaymentState,
    ProviderUnavailable,
)
from orderbridge.payments.registry import (
    PaymentsConfig,
    PaymentsMisconfigured,
    UnknownPaymentProvider,
    build_payment_providers,
)
from orderbridge.payments.stripe_provider import StripeConfig, StripePaymentProvider
from orderbridge.payments.test_provider import TestPaymentProvider

EUR = "EUR"
TOTAL = Decimal("20.00")


async def test_flaky_reference_fails_once_per_operation_then_works() -> None:
    provider = TestPaymentProvider()

    with pytest.raises(ProviderUnavailable):
        await provider.status("pay_flaky_1", amount=TOTAL, currency=EUR)
    status = await provider.status("pay_flaky_1", amount=TOTAL, currency=EUR)
    with pytest.raises(ProviderUnavailable):
        await provider.capture("pay_flaky_1", amount=TOTAL, currency=EUR, idempotency_key="c")
    captured = await provider.capture(
        "pay_flaky_1", amount=TOTAL, currency=EUR, idempotency_key="c"
    )

    assert status.state is PaymentState.AUTHORIZED
    assert captured.state is PaymentState.CAPTURED


async def test_unavailable_reference_never_recovers() -> None:
    provider = TestPaymentProvider()

    for _ in range(3):
        with pytest.raises(ProviderUnavailable):
            await provider.status("pay_unavailable", amount=TOTAL, currency=EUR)


async def test_decline_code_comes_from_the_reference() -> None:
    provider = TestPaymentProvider()

    status = await provider.status("pay_decline_insufficient_funds", amount=TOTAL, currency=EUR)

    assert status.state is PaymentState.FAILED
    assert status.decline_code == "insufficient_funds"


async def test_ordinary_reference_is_authorised_for_the_order_amount() -> None:
    status = await TestPaymentProvider().status("pay_0123abcd", amount=TOTAL, currency=EUR)

    assert (status.state, status.authorized) == (PaymentState.AUTHORIZED, TOTAL)


async def test_notfound_reference() -> None:
    with pytest.raises(PaymentNotFound):
        await TestPaymentProvider().status("pay_notfound", amount=TOTAL, currency=EUR)


async def test_refund_key_reused_for_another_amount_is_refused() -> None:
    provider = TestPaymentProvider()
    await provider.capture("pay_x", amount=TOTAL, currency=EUR, idempotency_key="c")
    await provider.refund("pay_x", amount=Decimal("5.00"), currency=EUR, idempotency_key="r")

    with pytest.raises(PaymentRejected) as refused:
        await provider.refund("pay_x", amount=Decimal("6.00"), currency=EUR, idempotency_key="r")

    assert refused.value.code == "idempotency_key_reused"


async def test_providers_satisfy_the_port() -> None:
    stripe_provider = StripePaymentProvider(
        StripeConfig("sk_test_x", api_base="http://127.0.0.1:9")
    )
    try:
        assert isinstance(TestPaymentProvider(), PaymentProvider)
        assert isinstance(stripe_provider, PaymentProvider)
    finally:
        await stripe_provider.aclose()


async def test_default_configuration_offers_the_test_provider_for_test_orders_only() -> None:
    providers = build_payment_providers(PaymentsConfig())

    assert providers.names() == ("test",)
    assert providers.get("test", environment="test").name == "test"
    with pytest.raises(UnknownPaymentProvider):
        providers.get("test", environment="live")
    with pytest.raises(UnknownPaymentProvider) as unknown:
        providers.get("paypal", environment="test")
    assert unknown.value.code == "unknown_payment_provider"
    await providers.aclose()


async def test_operator_may_let_the_test_provider_take_live_orders() -> None:
    providers = build_payment_providers(PaymentsConfig(test_provider_for_live_orders=True))

    assert providers.get("test", environment="live").name == "test"


async def test_stripe_is_built_from_its_configuration() -> None:
    providers = build_payment_providers(
        PaymentsConfig(enabled=("test", "stripe"), stripe=StripeConfig("sk_test_x"))
    )
    try:
        assert providers.get("stripe", environment="live").name == "stripe"
    finally:
        await providers.aclose()


@pytest.mark.parametrize(
    "config",
    [
        PaymentsConfig(enabled=("stripe",)),
        PaymentsConfig(enabled=("stripe",), stripe=StripeConfig("")),
        PaymentsConfig(enabled=("adyen",)),
    ],
)
def test_misconfiguration_is_found_at_start_up(config: PaymentsConfig) -> None:
    with pytest.raises(PaymentsMisconfigured):
        build_payment_providers(config)
