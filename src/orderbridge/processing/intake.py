"""What intake checks so that processing can run at all: the order's payment provider is one
this process offers, and may serve the order's environment (the ``test`` provider approves
anything, so a ``live`` order may only use it when the operator allowed it). Refused at the
checkout with 422 rather than accepted and cancelled later for a fault of configuration."""

from __future__ import annotations

from orderbridge.errors import FieldError, ValidationFailed
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.payments.registry import PaymentProviders, UnknownPaymentProvider


def check_payment_provider(order: CheckoutOrder, providers: PaymentProviders) -> None:
    """Raise ``ValidationFailed`` on ``payment.provider`` if processing could not use it."""
    try:
        providers.get(order.payment.provider, environment=order.environment)
    except UnknownPaymentProvider as refused:
        offered = ", ".join(providers.names()) or "none"
        raise ValidationFailed(
            [
                FieldError(
                    "payment.provider",
                    f"{refused.message} (offered: {offered})",
                    "payment_provider_not_enabled",
                )
            ]
        ) from None
