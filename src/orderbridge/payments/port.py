"""The payment-provider port: what order processing asks of a payment provider, and the
values and errors every provider answers with.

The checkout takes the buyer's payment (an authorisation, possibly after 3-D Secure) and
hands the order a ``payment {method, provider, reference}``. From then on orderbridge only
*checks* and *moves* that money through this port:

- ``status``   is the payment good for the order? (processing, before ``READY``)
- ``capture``  take the authorised money (as the order becomes ``READY``)
- ``void``     release an authorisation that was never captured (cancellation)
- ``refund``   give back captured money, in full or in parts, as often as needed

Contract every provider keeps (``tests/payments/test_provider_contract.py`` checks it):

- Amounts are ``Decimal`` in the order currency; the provider converts to its own minor
  units (``orderbridge.payments.amounts``). A payment in another currency than the order's
  is refused (``CurrencyMismatch``), never converted.
- Every mutating call takes an ``idempotency_key`` that the caller derives from its durable
  job, so a retry after a crash repeats the *same* operation. Beyond that, capture and void
  are idempotent by state: capturing a captured payment or voiding a voided one returns its
  status and moves no money, whatever the key (provider-side key stores expire; Stripe
  keeps keys for 24 hours). A refund repeated with the same key returns the first refund.
- Declines are answers, not errors: ``status`` reports ``FAILED`` with the decline code.
  Errors are for calls that could not be carried out, and they are only of two kinds:
  ``ProviderUnavailable`` (retry later) or ``PaymentRejected`` (retrying will not help).
- Every method is a coroutine and none blocks the event loop. A provider may hold network
  connections: the composition root calls ``aclose`` at shutdown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

from orderbridge.money import ZERO


class PaymentState(StrEnum):
    """Where the buyer's money is, from the order's point of view."""

    AUTHORIZED = "authorized"  # held on the buyer's card, not yet taken (Stripe requires_capture)
    CAPTURED = "captured"  # taken (Stripe succeeded); refunds do not change the state
    PENDING = "pending"  # the buyer or the bank must still act (3-D Secure, processing)
    FAILED = "failed"  # declined or abandoned; no money held (Stripe requires_payment_method)
    VOIDED = "voided"  # the authorisation was released (Stripe canceled)


class RefundStatus(StrEnum):
    PENDING = "pending"  # accepted by the provider, money not yet back (bank transfers, ...)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the provider gave up (closed card account, ...); money not returned


@dataclass(frozen=True)
class PaymentStatus:
    """A payment as the provider sees it now.

    ``authorized`` is the amount the bank approved (kept after capture, as history; zero if
    nothing was ever approved), ``captured`` what was taken, ``refunded`` what went back.
    ``provider_status`` is the provider's own word (``requires_capture``) for people reading
    the timeline; code decides on ``state``. ``card_fingerprint`` and ``card_country`` feed
    fraud screening when the provider knows them. ``evidence`` is a flat string map for the
    order's timeline (provider ids, next action, ...), never secrets.
    """

    state: PaymentState
    currency: str
    authorized: Decimal = ZERO
    captured: Decimal = ZERO
    refunded: Decimal = ZERO
    provider_status: str = ""
    pending_reason: str | None = None  # why PENDING: "requires_action", "processing", ...
    decline_code: str | None = None  # "card_declined", "insufficient_funds", ...
    decline_message: str | None = None
    card_fingerprint: str | None = None
    card_country: str | None = None
    evidence: Mapping[str, str] = field(default_factory=dict)

    @property
    def refundable(self) -> Decimal:
        return max(ZERO, self.captured - self.refunded)


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: str  # the provider's id of the refund
    status: RefundStatus
    amount: Decimal
    currency: str
    failure_reason: str | None = None


# ---- errors -----------------------------------------------------------------------------


class PaymentError(Exception):
    """Base of the two kinds of error a provider raises. The tree, and where provider
    errors land (Stripe SDK classes in brackets)::

        PaymentError
        ├── ProviderUnavailable        retryable: the call may not have happened; try again
        │                              later with the same idempotency key
        │     network errors, timeouts           [APIConnectionError]
        │     HTTP 429                           [RateLimitError]
        │     HTTP 5xx, unparseable answers      [APIError]
        │     a concurrent request holds the key [IdempotencyError "in progress" (409)]
        │     bad or revoked API key             [AuthenticationError, PermissionError]
        │       (an operator must fix the configuration: orders wait instead of being
        │       cancelled for a fault that is not the buyer's)
        └── PaymentRejected            permanent: the provider refused; ``code`` says why
              PaymentNotFound          unknown reference            [resource_missing]
              CurrencyMismatch         payment is not in the order currency
              AmountNotRepresentable   amount finer than the provider's smallest unit
              PaymentStateConflict     capture of a failed payment, void of a captured one
                                         [payment_intent_unexpected_state]
              RefundExceedsCaptured    refund above what was captured and not yet refunded
                                         [charge_already_refunded, amount_too_large]
              other provider refusals  with the provider's code   [CardError,
                                         InvalidRequestError, IdempotencyError (key reused
                                         with other parameters)]
    """

    retryable: bool = False
    code: str = "payment_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ProviderUnavailable(PaymentError):
    retryable = True
    code = "provider_unavailable"


class PaymentRejected(PaymentError):
    retryable = False
    code = "payment_rejected"


class PaymentNotFound(PaymentRejected):
    code = "payment_not_found"


class CurrencyMismatch(PaymentRejected):
    code = "currency_mismatch"


class AmountNotRepresentable(PaymentRejected):
    code = "amount_not_representable"


class PaymentStateConflict(PaymentRejected):
    code = "payment_state_conflict"


class RefundExceedsCaptured(PaymentRejected):
    code = "refund_exceeds_captured"


# ---- the port ---------------------------------------------------------------------------


@runtime_checkable
class PaymentProvider(Protocol):
    """One payment provider (``test``, ``stripe``; PayPal, Adyen... later). See the module
    docstring for the contract; docs/payments.md for how to add a provider."""

    name: str

    async def status(self, reference: str, *, amount: Decimal, currency: str) -> PaymentStatus:
        """The payment now. ``amount`` is the order total the payment should cover:
        providers that look the payment up report what they find (the caller compares);
        one without a record of its own (``test``) takes it as the authorised amount."""
        ...

    async def capture(
        self, reference: str, *, amount: Decimal, currency: str, idempotency_key: str
    ) -> PaymentStatus:
        """Take ``amount`` (at most what is authorised; less releases the rest)."""
        ...

    async def void(self, reference: str, *, currency: str, idempotency_key: str) -> PaymentStatus:
        """Release what is held and never captured. A payment that holds nothing (failed,
        pending) is closed too; a captured one raises ``PaymentStateConflict``: refund it."""
        ...

    async def refund(
        self, reference: str, *, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundOutcome:
        """Give back ``amount`` of what was captured. Repeatable with new keys until the
        captured amount is used up; beyond it, ``RefundExceedsCaptured``."""
        ...

    async def aclose(self) -> None: ...
