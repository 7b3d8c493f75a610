"""Pure parts of processing: which steps an order goes through (``plan_steps``), and the
intake check of the payment provider."""

from __future__ import annotations

import random
from typing import Any

import pytest

from orderbridge.demo import sample_order
from orderbridge.errors import ValidationFailed
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.payments.registry import PaymentsConfig, build_payment_providers
from orderbridge.payments.stripe_provider import StripeConfig
from orderbridge.processing.config import ProcessingConfig
from orderbridge.processing.intake import check_payment_provider
from orderbridge.processing.plan import Route, Step, plan_steps

P, X, F, C = Step.PAYMENT, Step.PROHIBITED, Step.FRAUD, Step.CAPTURE
FR_DE, FR_FR = Route("FR", "DE"), Route("FR", "FR")


def config(**sections: dict[str, Any]) -> ProcessingConfig:
    return ProcessingConfig.model_validate(sections)


@pytest.mark.parametrize(
    ("name", "settings", "method", "categories", "route", "steps"),
    [
        ("cross-border card", {}, "card", ["apparel"], FR_DE, (P, X, F, C)),
        ("domestic card", {}, "card", ["apparel"], FR_FR, (P, F, C)),
        (
            "domestic, screened on request",
            {"prohibited": {"screen_domestic": True}},
            "card",
            ["apparel"],
            FR_FR,
            (P, X, F, C),
        ),
        ("digital only", {}, "card", ["digital", "Gift_Card"], FR_DE, (P, F, C)),
        ("digital and physical", {}, "card", ["digital", "books"], FR_DE, (P, X, F, C)),
        ("no category is physical", {}, "card", [None], FR_DE, (P, X, F, C)),
        ("bank transfer", {}, "bank_transfer", ["apparel"], FR_DE, (P, X, F)),
        (
            "another deferred method",
            {"payment": {"deferred_methods": ["invoice"]}},
            "invoice",
            ["apparel"],
            FR_DE,
            (P, X, F),
        ),
        (
            "bank transfer no longer deferred",
            {"payment": {"deferred_methods": []}},
            "bank_transfer",
            ["apparel"],
            FR_DE,
            (P, X, F, C),
        ),
        ("payment off", {"payment": {"enabled": False}}, "card", ["apparel"], FR_DE, (X, F)),
        ("fraud off", {"fraud": {"enabled": False}}, "card", ["apparel"], FR_DE, (P, X, C)),
        (
            "prohibited off",
            {"prohibited": {"enabled": False}},
            "card",
            ["apparel"],
            FR_DE,
            (P, F, C),
        ),
        (
            "everything off",
            {
                "payment": {"enabled": False},
                "fraud": {"enabled": False},
                "prohibited": {"enabled": False},
            },
            "card",
            ["apparel"],
            FR_DE,
            (),
        ),
    ],
)
def test_plan_steps(
    name: str,
    settings: dict[str, Any],
    method: str,
    categories: list[str | None],
    route: Route,
    steps: tuple[Step, ...],
) -> None:
    planned = plan_steps(
        config(**settings), payment_method=method, categories=categories, route=route
    )
    assert planned == steps, name


def checkout(provider: str, environment: str) -> CheckoutOrder:
    order = sample_order(random.Random(1))
    order["payment"]["provider"] = provider
    order["environment"] = environment
    return CheckoutOrder.model_validate(order)


@pytest.mark.parametrize(
    ("enabled", "live_test", "provider", "environment", "accepted"),
    [
        (("test",), False, "test", "test", True),
        (("test",), False, "test", "live", False),
        (("test",), True, "test", "live", True),
        (("test",), False, "stripe", "test", False),
        (("test",), False, "paypal", "live", False),
        (("test", "stripe"), False, "stripe", "live", True),
        (("test", "stripe"), False, "stripe", "test", True),
    ],
)
def test_intake_refuses_a_payment_provider_processing_could_not_use(
    enabled: tuple[str, ...], live_test: bool, provider: str, environment: str, accepted: bool
) -> None:
    providers = build_payment_providers(
        PaymentsConfig(
            enabled=enabled,
            # Never called: the check only asks which providers exist.
            stripe=StripeConfig(api_key="sk_test_unused", api_base="http://127.0.0.1:9"),
            test_provider_for_live_orders=live_test,
        )
    )
    order = checkout(provider, environment)
    if accepted:
        check_payment_provider(order, providers)
        return
    with pytest.raises(ValidationFailed) as refused:
        check_payment_provider(order, providers)
    [error] = refused.value.errors
    assert (error.path, error.code) == ("payment.provider", "payment_provider_not_enabled")
    assert provider in error.message
