"""The ``stripe`` payment provider: PaymentIntents through the official ``stripe`` SDK's
``StripeClient``, asynchronously (its ``*_async`` methods over ``stripe.HTTPXClient``).

The checkout creates and confirms a PaymentIntent with ``capture_method=manual`` and hands us
its id (``pi_…``) as the payment reference. We read it (``status``), capture it when the order
becomes ``READY``, cancel it to void an authorisation, and refund it through the Refunds API.

Idempotency, in three layers, because a crash may come between Stripe's answer and our
commit, and Stripe only remembers idempotency keys for 24 hours:

1. every mutating request carries the caller's ``idempotency_key`` (Stripe replays the first
   answer to a retried request);
2. capture and void look at the PaymentIntent first and do nothing when it is already
   captured / canceled;
3. a refund carries its key in ``metadata[orderbridge_idempotency_key]``; before creating a
   refund we look for one with the same key on the PaymentIntent.

Amounts: Stripe's own minor units (``stripe_amounts``), never rounded.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import stripe
from stripe.params import PaymentIntentRetrieveParams

from orderbridge.money import ZERO
from orderbridge.payments.amounts import from_minor_units, to_minor_units
from orderbridge.payments.port import (
    CurrencyMismatch,
    PaymentError,
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
from orderbridge.payments.stripe_amounts import stripe_rule

IDEMPOTENCY_METADATA = "orderbridge_idempotency_key"

# Expanded on every read: the charge carries captured / refunded amounts, the payment
# method the card fingerprint and country for fraud screening.
_EXPAND = ["latest_charge", "payment_method"]

# PaymentIntent.status → our state. A status Stripe adds later is treated as PENDING (see
# ``intent_status``): the order waits, and its deadline fails it, rather than being
# captured or cancelled on a guess.
_STATES: dict[str, PaymentState] = {
    "requires_capture": PaymentState.AUTHORIZED,
    "succeeded": PaymentState.CAPTURED,
    "requires_action": PaymentState.PENDING,
    "processing": PaymentState.PENDING,
    "requires_confirmation": PaymentState.PENDING,
    "requires_payment_method": PaymentState.FAILED,
    "canceled": PaymentState.VOIDED,
}

_REFUND_STATES: dict[str, RefundStatus] = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.FAILED,
}

# InvalidRequestError codes that name a condition of the port.
_REJECTIONS: dict[str, type[PaymentRejected]] = {
    "resource_missing": PaymentNotFound,
    "payment_intent_unexpected_state": PaymentStateConflict,
    "charge_already_refunded": RefundExceedsCaptured,
    "charge_already_captured": PaymentStateConflict,
}


@dataclass(frozen=True)
class StripeConfig:
    api_key: str
    api_base: str | None = None  # None: Stripe itself; localstripe: "http://127.0.0.1:8420"
    timeout_seconds: float = 10.0
    # The SDK's own quick retries (same idempotency key, backoff); the job queue retries
    # later and longer, so keep this small.
    max_network_retries: int = 1
    stripe_version: str | None = None  # None: the SDK's pinned API version


class StripePaymentProvider:
    name = "stripe"

    def __init__(self, config: StripeConfig) -> None:
        self._http = stripe.HTTPXClient(timeout=config.timeout_seconds)
        self._client = stripe.StripeClient(
            config.api_key,
            base_addresses={"api": config.api_base} if config.api_base else None,
            http_client=self._http,
            max_network_retries=config.max_network_retries,
            stripe_version=config.stripe_version,
        )

    async def status(self, reference: str, *, amount: Decimal, currency: str) -> PaymentStatus:
        return intent_status(await self._retrieve(reference), currency)

    async def capture(
        self, reference: str, *, amount: Decimal, currency: str, idempotency_key: str
    ) -> PaymentStatus:
        current = intent_status(await self._retrieve(reference), currency)
        if current.state is PaymentState.CAPTURED:
            return current
        if current.state is not PaymentState.AUTHORIZED:
            raise PaymentStateConflict(f"a {current.provider_status} payment cannot be captured")
        units = to_minor_units(amount, currency, stripe_rule(currency))
        if amount > current.authorized:
            raise PaymentRejected(
                f"capture of {amount} exceeds the authorised {current.authorized}",
                code="capture_exceeds_authorized",
            )
        try:
            intent = await _call(
                self._client.v1.payment_intents.capture_async(
                    reference,
                    {"amount_to_capture": units, "expand": _EXPAND},
                    {"idempotency_key": idempotency_key},
                )
            )
        except PaymentStateConflict:
            # Captured meanwhile by an earlier attempt whose answer we never saw.
            again = intent_status(await self._retrieve(reference), currency)
            if again.state is PaymentState.CAPTURED:
                return again
            raise
        return intent_status(intent, currency)

    async def void(self, reference: str, *, currency: str, idempotency_key: str) -> PaymentStatus:
        current = intent_status(await self._retrieve(reference), currency)
        if current.state is PaymentState.VOIDED:
            return current
        if current.state is PaymentState.CAPTURED:
            raise PaymentStateConflict("a captured payment cannot be voided; refund it")
        try:
            intent = await _call(
                self._client.v1.payment_intents.cancel_async(
                    reference, {"expand": _EXPAND}, {"idempotency_key": idempotency_key}
                )
            )
        except PaymentStateConflict:
            again = intent_status(await self._retrieve(reference), currency)
            if again.state is PaymentState.VOIDED:
                return again
            raise
        return intent_status(intent, currency)

    async def refund(
        self, reference: str, *, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundOutcome:
        units = to_minor_units(amount, currency, stripe_rule(currency))
        current = intent_status(await self._retrieve(reference), currency)
        if current.state is not PaymentState.CAPTURED:
            raise PaymentStateConflict(
                f"a {current.provider_status} payment cannot be refunded; void it instead"
            )
        earlier = await self._refund_with_key(reference, idempotency_key)
        if earlier is not None:
            outcome = refund_outcome(earlier, currency)
            if outcome.amount != amount:
                raise PaymentRejected(
                    "idempotency key reused for another refund amount",
                    code="idempotency_key_reused",
                )
            return outcome
        if units <= 0:
            raise PaymentRejected("a refund must be positive", code="invalid_amount")
        # Stripe refuses too, but not every Stripe-compatible server does, and this way the
        # caller gets the condition by name.
        if amount > current.refundable:
            raise RefundExceedsCaptured(
                f"refund of {amount} exceeds the {current.refundable} still refundable"
            )
        try:
            refund = await _call(
                self._client.v1.refunds.create_async(
                    {
                        "payment_intent": reference,
                        "amount": units,
                        "metadata": {IDEMPOTENCY_METADATA: idempotency_key},
                    },
                    {"idempotency_key": idempotency_key},
                )
            )
        except PaymentRejected as error:
            if error.code == "amount_too_large":
                raise RefundExceedsCaptured(error.message) from error
            raise
        return refund_outcome(refund, currency)

    async def aclose(self) -> None:
        # The SDK leaves this one method unannotated.
        await self._http.close_async()  # type: ignore[no-untyped-call]

    # ---- requests ------------------------------------------------------------------------

    async def _retrieve(self, reference: str) -> dict[str, Any]:
        if not reference.startswith("pi_"):
            raise PaymentNotFound(f"{reference!r} is not a PaymentIntent id (pi_…)")
        params: PaymentIntentRetrieveParams = {"expand": _EXPAND}
        return await _call(self._client.v1.payment_intents.retrieve_async(reference, params))

    async def _refund_with_key(self, reference: str, key: str) -> dict[str, Any] | None:
        # One page of 100: a payment with more refunds than that is not an order's.
        refunds = await _call(
            self._client.v1.refunds.list_async({"payment_intent": reference, "limit": 100})
        )
        for refund in refunds.get("data") or []:
            metadata = refund.get("metadata") or {}
            if isinstance(metadata, dict) and metadata.get(IDEMPOTENCY_METADATA) == key:
                return dict(refund)
        return None


async def _call(request: Awaitable[stripe.StripeObject]) -> dict[str, Any]:
    """Await an SDK call and hand back plain data; Stripe's errors become the port's.
    (Plain dicts because Stripe and Stripe-compatible servers differ in which optional
    fields they send; reading them with ``.get`` keeps absent fields from raising.)"""
    try:
        result = await request
    except stripe.StripeError as error:
        raise translate_error(error) from error
    data: dict[str, Any] = result.to_dict()
    return data


def translate_error(error: stripe.StripeError) -> PaymentError:
    """One Stripe error → the port's error (the tree is in ``PaymentError``'s docstring)."""
    message = str(error.user_message or type(error).__name__)
    code = error.code
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError):
        return ProviderUnavailable(message)
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return ProviderUnavailable(message, code="provider_misconfigured")
    if isinstance(error, stripe.CardError):
        return PaymentRejected(message, code=_decline_code(error) or code or "card_declined")
    if isinstance(error, stripe.IdempotencyError):
        return PaymentRejected(message, code="idempotency_key_reused")
    if isinstance(error, stripe.InvalidRequestError):
        if code in _REJECTIONS:
            return _REJECTIONS[code](message, code=code)
        if error.http_status == 404:
            return PaymentNotFound(message)
        return PaymentRejected(message, code=code or "invalid_request")
    # APIError (5xx, 409 "idempotency key in use" / lock timeouts) and anything unknown
    # from a server: try again later rather than fail an order on a guess.
    if error.http_status is None or error.http_status >= 500 or error.http_status == 409:
        return ProviderUnavailable(message)
    return PaymentRejected(message, code=code or "provider_error")


def _decline_code(error: stripe.CardError) -> str | None:
    body = error.json_body
    if isinstance(body, dict):
        detail = body.get("error")
        if isinstance(detail, dict):
            return _str(detail, "decline_code")
    return None


# ---- reading Stripe objects (pure) -------------------------------------------------------


def intent_status(intent: Mapping[str, Any], currency: str) -> PaymentStatus:
    """A PaymentIntent (as a plain dict, ``latest_charge`` and ``payment_method`` expanded
    or not) → the port's ``PaymentStatus`` in ``currency``. Pure."""
    provider_currency = (_str(intent, "currency") or "").upper()
    if provider_currency != currency.upper():
        raise CurrencyMismatch(f"payment is in {provider_currency or '?'}, not {currency}")
    rule = stripe_rule(currency)
    status = _str(intent, "status") or ""
    state = _STATES.get(status, PaymentState.PENDING)
    charge = _map(intent, "latest_charge")
    amount = _int(intent, "amount") or 0

    approved = state in (PaymentState.AUTHORIZED, PaymentState.CAPTURED) or (
        charge is not None and _str(charge, "status") == "succeeded"
    )
    authorized = amount if approved else 0
    if state is PaymentState.AUTHORIZED and (_int(intent, "amount_capturable") or 0) > 0:
        authorized = _int(intent, "amount_capturable") or 0
    # ``amount_received`` is Stripe's captured amount; servers without it (localstripe) are
    # read from the charge. After a partial capture, such servers record the released rest
    # as a refund; captured − refunded then still gives what can be refunded.
    captured = _int(intent, "amount_received")
    if captured is None:
        captured = 0
        if charge is not None and charge.get("captured") is True:
            captured = _int(charge, "amount_captured") or _int(charge, "amount") or 0
    refunded = (_int(charge, "amount_refunded") if charge else None) or 0

    error = _map(intent, "last_payment_error")
    card = _card(intent, charge, error)
    evidence = {
        "payment_intent": _str(intent, "id") or "",
        "stripe_status": status,
    }
    for key, value in (
        ("charge", _str(charge, "id") if charge else _str(intent, "latest_charge")),
        ("capture_method", _str(intent, "capture_method")),
        ("next_action", _str(_map(intent, "next_action") or {}, "type")),
        ("cancellation_reason", _str(intent, "cancellation_reason")),
    ):
        if value:
            evidence[key] = value

    return PaymentStatus(
        state=state,
        currency=currency,
        authorized=from_minor_units(authorized, currency, rule),
        captured=from_minor_units(captured, currency, rule),
        refunded=from_minor_units(refunded, currency, rule),
        provider_status=status,
        pending_reason=status if state is PaymentState.PENDING else None,
        decline_code=(_str(error, "decline_code") or _str(error, "code")) if error else None,
        decline_message=_str(error, "message") if error else None,
        card_fingerprint=_str(card, "fingerprint") if card else None,
        card_country=_str(card, "country") if card else None,
        evidence=evidence,
    )


def refund_outcome(refund: Mapping[str, Any], currency: str) -> RefundOutcome:
    provider_currency = (_str(refund, "currency") or currency).upper()
    if provider_currency != currency.upper():
        raise CurrencyMismatch(f"refund is in {provider_currency}, not {currency}")
    units = _int(refund, "amount") or 0
    return RefundOutcome(
        refund_id=_str(refund, "id") or "",
        # An unknown refund status is not yet a success.
        status=_REFUND_STATES.get(_str(refund, "status") or "", RefundStatus.PENDING),
        amount=from_minor_units(units, currency, stripe_rule(currency)) if units else ZERO,
        currency=currency,
        failure_reason=_str(refund, "failure_reason"),
    )


def _card(
    intent: Mapping[str, Any],
    charge: Mapping[str, Any] | None,
    error: Mapping[str, Any] | None,
) -> Mapping[str, Any] | None:
    """The card, wherever this answer has it: the expanded payment method, the charge's
    payment method details, or (after a decline, when Stripe detaches the payment method)
    the error's payment method."""
    for holder in (
        _map(intent, "payment_method"),
        _map(charge, "payment_method_details") if charge else None,
        _map(error, "payment_method") if error else None,
    ):
        card = _map(holder, "card") if holder else None
        if card is not None:
            return card
    return None


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _map(data: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = data.get(key)
    return value if isinstance(value, Mapping) else None
