"""The ``test`` payment provider: deterministic outcomes chosen by the payment reference, for
demos, the embedded default and tests of the pipeline. No network, no money.

=============================  =============================================================
reference starts with          behaviour
=============================  =============================================================
``pay_unavailable``            every call raises ``ProviderUnavailable``
``pay_flaky``                  the first call of each operation (status, capture, void,
                               refund) for that reference raises ``ProviderUnavailable``;
                               afterwards it behaves like an ordinary reference
``pay_notfound``               every call raises ``PaymentNotFound``
``pay_decline``                ``failed``, decline code ``card_declined``;
                               ``pay_decline_<code>`` declines with ``<code>``
                               (``pay_decline_insufficient_funds``)
``pay_3ds_ok``                 ``authorized``, after a completed 3-D Secure challenge
``pay_3ds``                    ``pending`` with reason ``requires_action`` (the buyer never
                               finishes the challenge)
anything else (``pay_…``)      ``authorized`` for the order amount
=============================  =============================================================

The first ``status`` (or ``capture``) of a reference creates its payment, authorised for the
amount asked, in the currency asked. ``capture``, ``void`` and ``refund`` then follow the port
contract exactly like a real provider: capture at most what is authorised, once; void only
what is not captured; refunds up to what was captured, each idempotency key once (the same
key returns the same refund). Card fingerprint ``fp_<reference>``, card country ``FR``.

State lives in the instance's memory: a restarted process has forgotten its payments (a
``status`` or ``capture`` recreates them; a refund of a forgotten capture is refused).
Never enable it for live orders: it approves anything.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from orderbridge.money import ZERO
from orderbridge.payments.amounts import to_minor_units
from orderbridge.payments.port import (
    CurrencyMismatch,
    PaymentNotFound,
    PaymentRejected,
    PaymentState,
    PaymentStateConflict,
    PaymentStatus,
    ProviderUnavailable,
    RefundExceedsCaptured,
    RefundOutcome,
    RefundStatus,
)

DECLINE = "pay_decline"
THREE_DS_OK = "pay_3ds_ok"
THREE_DS = "pay_3ds"
UNAVAILABLE = "pay_unavailable"
FLAKY = "pay_flaky"
NOT_FOUND = "pay_notfound"


@dataclass
class _Payment:
    reference: str
    currency: str
    state: PaymentState
    authorized: Decimal = ZERO
    captured: Decimal = ZERO
    refunds: dict[str, RefundOutcome] = field(default_factory=dict)
    pending_reason: str | None = None
    decline_code: str | None = None
    evidence: dict[str, str] = field(default_factory=dict)

    @property
    def refunded(self) -> Decimal:
        return sum((r.amount for r in self.refunds.values()), ZERO)

    def snapshot(self) -> PaymentStatus:
        return PaymentStatus(
            state=self.state,
            currency=self.currency,
            authorized=self.authorized,
            captured=self.captured,
            refunded=self.refunded,
            provider_status=f"test_{self.state}",
            pending_reason=self.pending_reason,
            decline_code=self.decline_code,
            decline_message="The test card was declined." if self.decline_code else None,
            card_fingerprint=f"fp_{self.reference}",
            card_country="FR",
            evidence=dict(self.evidence),
        )


class TestPaymentProvider:
    """Deterministic by payment reference; see the module docstring for the table."""

    __test__ = False  # a class named Test* that is not a pytest test class
    name = "test"

    def __init__(self) -> None:
        self._payments: dict[str, _Payment] = {}
        self._calls: Counter[tuple[str, str]] = Counter()
        # (operation, reference, idempotency key) → the result given the first time
        self._results: dict[tuple[str, str, str], PaymentStatus] = {}
        self._refund_ids = 0

    async def status(self, reference: str, *, amount: Decimal, currency: str) -> PaymentStatus:
        self._behave("status", reference)
        return self._payment(reference, amount, currency).snapshot()

    async def capture(
        self, reference: str, *, amount: Decimal, currency: str, idempotency_key: str
    ) -> PaymentStatus:
        self._behave("capture", reference)
        to_minor_units(amount, currency)
        if (done := self._results.get(("capture", reference, idempotency_key))) is not None:
            return done
        payment = self._payment(reference, amount, currency)
        if payment.state is PaymentState.AUTHORIZED:
            if amount > payment.authorized:
                raise PaymentRejected(
                    f"capture of {amount} exceeds the authorised {payment.authorized}",
                    code="capture_exceeds_authorized",
                )
            payment.captured = amount
            payment.state = PaymentState.CAPTURED
            payment.evidence["captured_with"] = idempotency_key
        elif payment.state is not PaymentState.CAPTURED:
            raise PaymentStateConflict(f"a {payment.state} payment cannot be captured")
        result = payment.snapshot()
        self._results["capture", reference, idempotency_key] = result
        return result

    async def void(self, reference: str, *, currency: str, idempotency_key: str) -> PaymentStatus:
        self._behave("void", reference)
        if (done := self._results.get(("void", reference, idempotency_key))) is not None:
            return done
        payment = self._payment(reference, ZERO, currency)
        if payment.state is PaymentState.CAPTURED:
            raise PaymentStateConflict("a captured payment cannot be voided; refund it")
        if payment.state is not PaymentState.VOIDED:
            payment.state = PaymentState.VOIDED
            payment.pending_reason = None
            payment.evidence["voided_with"] = idempotency_key
        result = payment.snapshot()
        self._results["void", reference, idempotency_key] = result
        return result

    async def refund(
        self, reference: str, *, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundOutcome:
        self._behave("refund", reference)
        to_minor_units(amount, currency)
        payment = self._payments.get(reference)
        if payment is None or payment.state is not PaymentState.CAPTURED:
            raise PaymentStateConflict("only a captured payment can be refunded")
        if payment.currency != currency:
            raise CurrencyMismatch(f"payment is in {payment.currency}, not {currency}")
        if (done := payment.refunds.get(idempotency_key)) is not None:
            if done.amount != amount:
                raise PaymentRejected(
                    "idempotency key reused for another refund amount",
                    code="idempotency_key_reused",
                )
            return done
        if amount <= 0:
            raise PaymentRejected("a refund must be positive", code="invalid_amount")
        if amount > payment.captured - payment.refunded:
            raise RefundExceedsCaptured(
                f"refund of {amount} exceeds the {payment.captured - payment.refunded} "
                "still refundable"
            )
        self._refund_ids += 1
        outcome = RefundOutcome(
            refund_id=f"re_test_{self._refund_ids}",
            status=RefundStatus.SUCCEEDED,
            amount=amount,
            currency=currency,
        )
        payment.refunds[idempotency_key] = outcome
        return outcome

    async def aclose(self) -> None:
        return None

    # ---- behaviour by reference ----------------------------------------------------------

    def _behave(self, operation: str, reference: str) -> None:
        if reference.startswith(UNAVAILABLE):
            raise ProviderUnavailable(f"test provider: {reference} is always unavailable")
        if reference.startswith(NOT_FOUND):
            raise PaymentNotFound(f"test provider: no payment {reference}")
        if reference.startswith(FLAKY):
            self._calls[operation, reference] += 1
            if self._calls[operation, reference] == 1:
                raise ProviderUnavailable(f"test provider: first {operation} of {reference}")

    def _payment(self, reference: str, amount: Decimal, currency: str) -> _Payment:
        payment = self._payments.get(reference)
        if payment is None:
            payment = self._payments[reference] = _initial(reference, amount, currency)
        elif payment.currency != currency:
            raise CurrencyMismatch(f"payment is in {payment.currency}, not {currency}")
        return payment


def _initial(reference: str, amount: Decimal, currency: str) -> _Payment:
    if reference.startswith(DECLINE):
        suffix = reference[len(DECLINE) :]
        code = suffix[1:] if suffix.startswith("_") and len(suffix) > 1 else "card_declined"
        return _Payment(reference, currency, PaymentState.FAILED, decline_code=code)
    if reference.startswith(THREE_DS_OK):
        payment = _Payment(reference, currency, PaymentState.AUTHORIZED, authorized=amount)
        payment.evidence["three_d_secure"] = "authenticated"
        return payment
    if reference.startswith(THREE_DS):
        return _Payment(reference, currency, PaymentState.PENDING, pending_reason="requires_action")
    return _Payment(reference, currency, PaymentState.AUTHORIZED, authorized=amount)
