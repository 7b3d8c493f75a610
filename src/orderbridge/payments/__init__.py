"""Payments: the payment-provider port (``port``), its providers (``test_provider``,
``stripe_provider``) and the registry that builds them from configuration. Order processing
checks, captures, voids and refunds the buyer's money only through ``PaymentProvider``;
nothing here knows about orders, and no provider is built at import time."""

from orderbridge.payments.port import (
    AmountNotRepresentable,
    CurrencyMismatch,
    PaymentError,
    PaymentNotFound,
    PaymentProvider,
    PaymentRejected,
    PaymentState,
    PaymentStateConflict,
    PaymentStatus,
    ProviderUnavailable,
    RefundExceedsCaptured,
    RefundOutcome,
    RefundStatus,
)

__all__ = [
    "AmountNotRepresentable",
    "CurrencyMismatch",
    "PaymentError",
    "PaymentNotFound",
    "PaymentProvider",
    "PaymentRejected",
    "PaymentState",
    "PaymentStateConflict",
    "PaymentStatus",
    "ProviderUnavailable",
    "RefundExceedsCaptured",
    "RefundOutcome",
    "RefundStatus",
]
