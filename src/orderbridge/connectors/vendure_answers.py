"""Reading the Vendure Admin API's answers: the GraphQL ``data`` and ``errors`` of a call,
ErrorResult union members and top-level errors turned into push rejections, and the placed
order read back (``connectors.vendure`` makes the calls)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from orderbridge.connectors import http
from orderbridge.connectors import vendure_graphql as gql
from orderbridge.connectors.port import PlatformOrder, PushRejected, PushRetryable, RejectionCode
from orderbridge.money import format_amount, minor_units

# States of an order that was never placed (no payment yet) or was cancelled: what a
# crashed attempt leaves behind. Any other state is an order Vendure holds as placed.
UNPLACED_STATES = frozenset({"Created", "AddingItems", "Draft", "ArrangingPayment"})
LEFTOVER_STATES = UNPLACED_STATES | {"Cancelled"}

# ErrorResult codes of the order flow and what they mean for the push.
_ERROR_CODES = {
    "INSUFFICIENT_STOCK_ERROR": RejectionCode.OUT_OF_STOCK,
    "EMAIL_ADDRESS_CONFLICT_ERROR": RejectionCode.INVALID_CUSTOMER,
    "INELIGIBLE_SHIPPING_METHOD_ERROR": RejectionCode.SHIPPING_UNAVAILABLE,
    "INVALID_CREDENTIALS_ERROR": RejectionCode.AUTH_FAILED,
    "NATIVE_AUTH_STRATEGY_ERROR": RejectionCode.AUTH_FAILED,
}


@dataclass(frozen=True)
class Answer:
    data: Mapping[str, Any]
    errors: Sequence[Mapping[str, Any]]


def read_answer(response: httpx.Response, *, outcome_unknown: bool) -> Answer:
    # Vendure reports GraphQL errors with 200; a 400 carries a document it refused
    # (validation), which has the same body shape.
    http.raise_for_status(response)
    if response.status_code == 404:
        raise PushRejected(
            RejectionCode.NOT_FOUND,
            f"no Vendure Admin API at {response.request.url} (404)",
            platform_code="404",
        )
    if response.status_code not in (200, 400):
        raise http.unexpected(response, outcome_unknown=outcome_unknown)
    body = http.decode_json(response, outcome_unknown=outcome_unknown)
    if not isinstance(body, dict) or not ("data" in body or "errors" in body):
        raise http.unexpected(response, outcome_unknown=outcome_unknown)
    return Answer(body.get("data") or {}, body.get("errors") or [])


def forbidden(answer: Answer) -> bool:
    return any(error_code_of(error) == "FORBIDDEN" for error in answer.errors)


def error_code_of(error: Mapping[str, Any]) -> str | None:
    extensions = error.get("extensions")
    code = extensions.get("code") if isinstance(extensions, Mapping) else None
    return str(code) if code is not None else None


def is_unique_violation(error: Mapping[str, Any]) -> bool:
    message = str(error.get("message", "")).lower()
    return "unique" in message or "duplicate key" in message


def classify_error(error: Mapping[str, Any], *, sku: str | None = None) -> PushRejected:
    """A top-level GraphQL error as a rejection: Vendure's errors here are about the
    request (unknown entity, bad input), not about the moment."""
    message = str(error.get("message", "Vendure refused the request"))
    code = error_code_of(error)
    skus = (sku,) if sku else ()
    lowered = message.lower()
    if code == "ENTITY_NOT_FOUND" and "productvariant" in lowered:
        reason = RejectionCode.PRODUCT_NOT_FOUND
    elif ("currency" in lowered and "not available" in lowered) or "no price information" in (
        lowered
    ):
        reason = RejectionCode.CURRENCY_UNSUPPORTED
    elif "countrycode" in lowered or "$shipping" in message or "$billing" in message:
        reason = RejectionCode.INVALID_ADDRESS
    elif "$customer" in message:
        reason = RejectionCode.INVALID_CUSTOMER
    elif code == "FORBIDDEN":
        reason = RejectionCode.PERMISSION_DENIED
    else:
        reason = RejectionCode.REJECTED
    return PushRejected(reason, f"Vendure: {message}", platform_code=code, skus=skus)


def result_rejection(
    result: Mapping[str, Any],
    *,
    sku: str | None = None,
    default: RejectionCode = RejectionCode.REJECTED,
) -> PushRejected:
    """An ErrorResult (HTTP 200, in ``data``) as a rejection."""
    error_code = str(result.get("errorCode"))
    message = str(result.get("message", error_code))
    reason = _ERROR_CODES.get(error_code, default)
    transition = result.get("transitionError")
    if transition:
        message = f"{message}: {transition}"
        lowered = str(transition).lower()
        if "customer" in lowered:
            reason = RejectionCode.INVALID_CUSTOMER
        elif "shipping" in lowered:
            reason = RejectionCode.SHIPPING_UNAVAILABLE
        elif "stock" in lowered:
            reason = RejectionCode.OUT_OF_STOCK
    if "quantityAvailable" in result:
        message = f"{message} (available: {result['quantityAvailable']})"
    return PushRejected(
        reason,
        f"Vendure: {message}" + (f" [{sku}]" if sku else ""),
        platform_code=error_code,
        skus=(sku,) if sku else (),
    )


def transitioned(answer: Answer) -> bool:
    result = answer.data.get(gql.TRANSITION) if answer.data else None
    return isinstance(result, Mapping) and result.get("__typename") == "Order"


def check_settled(answer: Answer) -> PlatformOrder:
    """The settle document's answer; everything but a settled order is a rejection (the
    caller deletes the draft, which Vendure only allows while it is one)."""
    failed_at = {str(e["path"][0]): e for e in answer.errors if e.get("path")}
    for alias in (gql.SHIPPING_METHOD, gql.TRANSITION, gql.PAYMENT):
        error = failed_at.get(alias)
        if error is not None:
            raise classify_error(error)
        result = answer.data.get(alias)
        if isinstance(result, Mapping) and "errorCode" in result:
            raise result_rejection(result)
    if answer.errors:
        raise classify_error(answer.errors[0])
    payment = answer.data.get(gql.PAYMENT)
    try:
        if not isinstance(payment, Mapping) or payment["state"] in LEFTOVER_STATES:
            raise KeyError("state")
        return platform_order(payment)
    except (KeyError, TypeError, ValueError):
        # The payment call went through, its answer is not what we asked for: the retry's
        # find_order tells whether the order was placed.
        raise PushRetryable(f"Vendure did not confirm the order: {payment!r}"[:300]) from None


def platform_order(item: Mapping[str, Any]) -> PlatformOrder:
    currency = str(item["currencyCode"])
    total = Decimal(int(item["totalWithTax"])).scaleb(-minor_units(currency))
    return PlatformOrder(
        id=str(item["id"]),
        number=str(item["code"]),
        details={
            "state": str(item["state"]),
            "total": format_amount(total, currency),
            "currency": currency,
        },
    )


# An answer of another shape than the one we asked for (a proxy's page, another API).
SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)


def unexpected_shape(error: Exception) -> PushRejected:
    return PushRejected(
        RejectionCode.INVALID_RESPONSE,
        f"Vendure answered an unexpected shape ({type(error).__name__}: {error})"[:300],
    )


def unreadable(what: str, answer: Answer) -> PushRejected:
    return PushRejected(
        RejectionCode.INVALID_RESPONSE, f"Vendure's answer to {what} has an unexpected shape"
    )
