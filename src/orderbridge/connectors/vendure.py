"""Vendure connector: pushes an order through the Admin API's draft-order flow.

Connection: ``base_url`` is the Admin API endpoint (``https://shop.example.com/admin-api``);
credentials ``username`` and ``password`` of an administrator whose role may create and
settle orders (``CreateOrder``, ``ReadOrder``, ``UpdateOrder``, ``DeleteOrder``,
``ReadCatalog``, ``ReadSettings``);
options ``shipping_method`` (a shipping method *code*; default: the first method Vendure
finds eligible for the order), ``payment_method`` (the name the manual payment is recorded
under, default ``orderbridge``) and ``channel_token`` (the ``vendure-token`` of a channel
other than the default one).

The flow (documents in ``vendure_graphql``): log in once and reuse the bearer token (log in
again once when Vendure answers FORBIDDEN, e.g. an expired session); look the SKUs up
(cached for a minute); ``createDraftOrder`` in the order's currency (``?currencyCode=``);
one document that tags the draft with our order id in the ``externalId`` custom field and
adds lines, customer, addresses and shipping method; one that moves it to
``ArrangingPayment`` and records a settled manual payment, leaving the order
``PaymentSettled``. Three requests per order once the caches are warm. Every ErrorResult
is checked; any refusal deletes the draft, so nothing half-built stays behind.

**No duplicates.** Vendure has no idempotency key; the ``externalId`` custom field (which
the merchant's Vendure config must declare, ``unique: true``, see docs/plug-and-play.md)
is set right after the draft is created, so a second draft for the same order cannot even
be tagged. ``find_order`` looks the order up by that field. What a crashed attempt left
behind is settled there, never resumed: a leftover ``Draft`` is deleted, an order stuck
in ``ArrangingPayment`` without its payment (or cancelled in Vendure) is cancelled and
untagged, so the retry builds the order again from our current data, and ``find_order``
only ever returns a settled order. ``create_order`` does the same when it meets such a
leftover, and returns the existing order when an earlier attempt did complete.

**Amounts.** A Vendure draft always takes its prices, taxes and shipping price from
Vendure's own catalog and settings; the Admin API cannot set a line price. What Vendure
charges is therefore its own ``totalWithTax``, which may differ from ours when the two
catalogs disagree. The connector pushes quantities by SKU and records our amounts (every
total, in our currency, as exact decimal strings) in the manual payment's metadata, where
the merchant sees them beside Vendure's; ``PlatformOrder.details`` carries both totals.
The order is created in ``PushOrder.currency``, which must be one of the channel's
currencies (else ``currency_unsupported``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from orderbridge.connectors import http
from orderbridge.connectors import vendure_graphql as gql
from orderbridge.connectors.port import (
    ConnectionCheck,
    ConnectionSettings,
    PlatformOrder,
    PushError,
    PushOrder,
    PushRejected,
    PushRetryable,
    RejectionCode,
)
from orderbridge.money import format_amount, minor_units

# States of an order that was never placed (no payment yet) or was cancelled: what a
# crashed attempt leaves behind. Any other state is an order Vendure holds as placed.
UNPLACED_STATES = frozenset({"Created", "AddingItems", "Draft", "ArrangingPayment"})
LEFTOVER_STATES = UNPLACED_STATES | {"Cancelled"}
DEFAULT_PAYMENT_METHOD = "orderbridge"
VARIANT_CACHE_SECONDS = 60.0

# ErrorResult codes of the order flow and what they mean for the push.
_ERROR_CODES = {
    "INSUFFICIENT_STOCK_ERROR": RejectionCode.OUT_OF_STOCK,
    "EMAIL_ADDRESS_CONFLICT_ERROR": RejectionCode.INVALID_CUSTOMER,
    "INELIGIBLE_SHIPPING_METHOD_ERROR": RejectionCode.SHIPPING_UNAVAILABLE,
    "INVALID_CREDENTIALS_ERROR": RejectionCode.AUTH_FAILED,
    "NATIVE_AUTH_STRATEGY_ERROR": RejectionCode.AUTH_FAILED,
}


@dataclass(frozen=True)
class _Answer:
    data: Mapping[str, Any]
    errors: Sequence[Mapping[str, Any]]


class _ExternalIdTaken(Exception):
    """The draft could not be tagged: an order already carries our order id."""


class _StaleCache(Exception):
    """Vendure no longer knows a cached variant or shipping method id (deleted, or
    re-created under a new id): look it up again."""


class VendureConnector:
    platform = "vendure"
    credential_fields = ("username", "password")
    option_fields = ("shipping_method", "payment_method", "channel_token")

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._monotonic = monotonic
        headers = {"Content-Type": "application/json"}
        channel = settings.options.get("channel_token")
        if channel:
            headers["vendure-token"] = channel
        self._client = http.build_client(
            settings, base_url=settings.base_url, headers=headers, transport=transport
        )
        self._token: str | None = None
        self._login_lock = asyncio.Lock()
        self._variants: dict[str, tuple[str, float]] = {}  # sku -> (variant id, expires)
        self._shipping_method_id: str | None = None  # of the shipping_method option

    # -- the port ------------------------------------------------------------------------

    async def create_order(self, order: PushOrder) -> PlatformOrder:
        try:
            return await self._create_once_more_if_taken(order)
        except _SHAPE_ERRORS as error:
            raise _unexpected_shape(error) from error

    async def find_order(self, order_id: str) -> PlatformOrder | None:
        try:
            return await self._find(order_id)
        except _SHAPE_ERRORS as error:
            raise _unexpected_shape(error) from error

    async def _create_once_more_if_taken(self, order: PushOrder) -> PlatformOrder:
        try:
            return await self._create_afresh_if_stale(order)
        except _ExternalIdTaken:
            existing = await self._find(order.order_id)  # also clears leftovers
            if existing is not None:
                return existing
            try:
                return await self._create_afresh_if_stale(order)
            except _ExternalIdTaken:
                raise PushRetryable(
                    f"another attempt is pushing order {order.order_id} at the same time"
                ) from None

    async def _create_afresh_if_stale(self, order: PushOrder) -> PlatformOrder:
        try:
            return await self._create(order, trust_cache=True)
        except _StaleCache:  # the draft is gone already; the caches were emptied
            return await self._create(order, trust_cache=False)

    async def _find(self, order_id: str) -> PlatformOrder | None:
        answer = await self._call(gql.FIND_BY_EXTERNAL_ID, {"externalId": order_id})
        if answer.errors:
            raise _classify_error(answer.errors[0])
        try:
            items = list(answer.data["orders"]["items"])
            placed = [_platform_order(i) for i in items if i["state"] not in LEFTOVER_STATES]
        except (KeyError, TypeError, ValueError) as error:
            raise _unreadable("orders", answer) from error
        if placed:
            return placed[0]
        for item in items:
            await self._discard(item)  # a crashed attempt's leftover, see the module doc
        return None

    async def test_connection(self) -> ConnectionCheck:
        try:
            async with self._login_lock:
                await self._login()
            answer = await self._call(gql.ACTIVE_CHANNEL, {})
            if answer.errors:
                raise _classify_error(answer.errors[0])
            channel = answer.data["activeChannel"]
        except PushRejected as error:
            return ConnectionCheck(False, error.detail, error.code)
        except PushRetryable as error:
            return ConnectionCheck(False, error.detail)
        except _SHAPE_ERRORS:
            return ConnectionCheck(
                False, "Vendure answered an unexpected shape", RejectionCode.INVALID_RESPONSE
            )
        currencies = ", ".join(channel.get("availableCurrencyCodes") or [])
        return ConnectionCheck(
            True, f"logged in to Vendure, channel {channel['code']} (currencies: {currencies})"
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- the flow ------------------------------------------------------------------------

    async def _create(self, order: PushOrder, *, trust_cache: bool) -> PlatformOrder:
        variant_ids = await self._variant_ids([line.sku for line in order.lines])
        method_id = await self._option_shipping_method()
        draft_id = await self._create_draft(order)
        done_with_draft = False
        try:
            answer = await self._call(
                gql.build_draft_document(len(order.lines), with_shipping_method=bool(method_id)),
                gql.draft_variables(order, draft_id, variant_ids, method_id),
                currency=order.currency,
            )
            self._check_draft(order, answer, trust_cache=trust_cache)
            per_order_method = None if method_id else await self._first_eligible(draft_id)
            answer = await self._call(
                gql.build_settle_document(with_shipping_method=bool(per_order_method)),
                gql.settle_variables(order, draft_id, self._payment_method, per_order_method),
                currency=order.currency,
                outcome_unknown=True,
            )
            try:
                result = _check_settled(answer)
            except PushRejected:
                if _transitioned(answer):  # out of Draft: no longer deletable
                    done_with_draft = True
                    await self._release(draft_id, quietly=True)
                raise
            done_with_draft = True
            return result
        finally:
            if not done_with_draft:
                # Refused, or unknown after a timeout: a draft is never an order, so
                # deleting it is always safe (Vendure only deletes drafts; a settled order
                # stays, and a retry's find_order finds it).
                await self._delete_draft(draft_id)

    async def _create_draft(self, order: PushOrder) -> str:
        answer = await self._call(gql.CREATE_DRAFT, {}, currency=order.currency)
        if answer.errors:
            raise _classify_error(answer.errors[0])
        try:
            draft = answer.data["createDraftOrder"]
            draft_id: str = draft["id"]
            currency = draft["currencyCode"]
        except (KeyError, TypeError) as error:
            raise _unreadable("createDraftOrder", answer) from error
        if currency != order.currency:  # a Vendure that ignores ?currencyCode=
            await self._delete_draft(draft_id)
            raise PushRejected(
                RejectionCode.CURRENCY_UNSUPPORTED,
                f"Vendure created the order in {currency}, not {order.currency}",
            )
        return draft_id

    def _check_draft(self, order: PushOrder, answer: _Answer, *, trust_cache: bool) -> None:
        """Raise for the first field of the draft document that failed, in document order
        (a top-level error stops the document there; ErrorResults do not). An unknown
        variant or shipping method id may come from the cache: ``_StaleCache`` once."""
        failed_at = {str(e["path"][0]): e for e in answer.errors if e.get("path")}
        if answer.errors and not failed_at:  # the document was refused as a whole
            raise _classify_error(answer.errors[0])
        fields: list[tuple[str, str | None]] = [
            (gql.EXTERNAL_ID, None),
            *((gql.line_alias(i), line.sku) for i, line in enumerate(order.lines)),
            (gql.CUSTOMER, None),
            (gql.SHIPPING_ADDRESS, None),
            (gql.BILLING_ADDRESS, None),
            (gql.SHIPPING_METHOD, None),
        ]
        for alias, sku in fields:
            error = failed_at.get(alias)
            if error is not None:
                if alias == gql.EXTERNAL_ID and _is_unique_violation(error):
                    raise _ExternalIdTaken()
                if _code(error) == "ENTITY_NOT_FOUND" and (
                    sku is not None or alias == gql.SHIPPING_METHOD
                ):
                    self._variants.pop(sku or "", None)
                    if alias == gql.SHIPPING_METHOD:
                        self._shipping_method_id = None
                    if trust_cache:
                        raise _StaleCache()
                rejection = _classify_error(error, sku=sku)
                if alias in (gql.SHIPPING_ADDRESS, gql.BILLING_ADDRESS) and (
                    rejection.code is RejectionCode.REJECTED
                ):
                    rejection = PushRejected(
                        RejectionCode.INVALID_ADDRESS, rejection.detail, platform_code=None
                    )
                raise rejection
            result = answer.data.get(alias) if answer.data else None
            if isinstance(result, Mapping) and "errorCode" in result:
                if alias == gql.SHIPPING_METHOD:
                    self._shipping_method_id = None
                raise _rejection(result, sku=sku)
        if answer.errors:
            raise _classify_error(answer.errors[0])

    async def _first_eligible(self, draft_id: str) -> str:
        answer = await self._call(gql.ELIGIBLE_SHIPPING, {"orderId": draft_id})
        if answer.errors:
            raise _classify_error(answer.errors[0])
        methods = answer.data.get("eligibleShippingMethodsForDraftOrder") or []
        if not methods:
            raise PushRejected(
                RejectionCode.SHIPPING_UNAVAILABLE,
                "Vendure has no shipping method eligible for this order",
            )
        method_id: str = methods[0]["id"]
        return method_id

    async def _option_shipping_method(self) -> str | None:
        code = self._settings.options.get("shipping_method")
        if not code:
            return None
        if self._shipping_method_id is None:
            answer = await self._call(gql.SHIPPING_METHODS, {"code": code})
            if answer.errors:
                raise _classify_error(answer.errors[0])
            items = answer.data["shippingMethods"]["items"]
            if not items:
                raise PushRejected(
                    RejectionCode.SHIPPING_UNAVAILABLE,
                    f"Vendure has no shipping method with code {code!r}",
                )
            self._shipping_method_id = items[0]["id"]
        return self._shipping_method_id

    async def _variant_ids(self, skus: Sequence[str]) -> dict[str, str]:
        now = self._monotonic()
        found = {
            sku: cached[0]
            for sku in skus
            if (cached := self._variants.get(sku)) is not None and cached[1] > now
        }
        wanted = sorted(set(skus) - set(found))
        if wanted:
            answer = await self._call(gql.VARIANTS_BY_SKU, {"skus": wanted, "take": len(wanted)})
            if answer.errors:
                raise _classify_error(answer.errors[0])
            disabled = []
            for item in answer.data["productVariants"]["items"]:
                if not item["enabled"]:
                    disabled.append(item["sku"])
                    continue
                found[item["sku"]] = item["id"]
                self._variants[item["sku"]] = (item["id"], now + VARIANT_CACHE_SECONDS)
            missing = tuple(sku for sku in wanted if sku not in found)
            if missing:
                off = f" ({', '.join(disabled)} disabled)" if disabled else ""
                raise PushRejected(
                    RejectionCode.PRODUCT_NOT_FOUND,
                    f"Vendure has no enabled product variant with SKU {', '.join(missing)}{off}",
                    skus=missing,
                )
        return found

    async def _discard(self, item: Mapping[str, Any]) -> None:
        """Delete a leftover draft; cancel and untag a leftover that left Draft but was
        never paid (``ArrangingPayment``); untag a cancelled one: our order id is then free
        for the retry."""
        if item["state"] == "Draft":
            await self._delete_draft(item["id"], quietly=False)
        elif item["state"] == "Cancelled":
            await self._release(item["id"], quietly=False, cancel=False)
        else:
            await self._release(item["id"], quietly=False)

    async def _release(self, order_id: str, *, quietly: bool, cancel: bool = True) -> None:
        try:
            answer = await self._call(gql.RELEASE if cancel else gql.UNTAG, {"orderId": order_id})
        except PushError:
            if quietly:
                return
            raise
        if answer.errors and not quietly:
            raise _classify_error(answer.errors[0])

    async def _delete_draft(self, draft_id: str, *, quietly: bool = True) -> None:
        try:
            answer = await self._call(gql.DELETE_DRAFT, {"orderId": draft_id})
        except PushError:
            if quietly:
                return  # find_order deletes it on the next attempt
            raise
        if answer.errors and not quietly:
            raise _classify_error(answer.errors[0])

    @property
    def _payment_method(self) -> str:
        return self._settings.options.get("payment_method") or DEFAULT_PAYMENT_METHOD

    # -- HTTP and auth -------------------------------------------------------------------

    async def _call(
        self,
        document: str,
        variables: Mapping[str, Any],
        *,
        currency: str | None = None,
        outcome_unknown: bool = False,
    ) -> _Answer:
        """One GraphQL request with the session token; one fresh login when Vendure says
        FORBIDDEN (no session, or an expired one), then FORBIDDEN means no permission."""
        token = self._token
        if token is None:
            token = await self._ensure_login(None)
        answer = await self._post(document, variables, token, currency, outcome_unknown)
        if _forbidden(answer):
            token = await self._ensure_login(token)
            answer = await self._post(document, variables, token, currency, outcome_unknown)
            if _forbidden(answer):
                raise PushRejected(
                    RejectionCode.PERMISSION_DENIED,
                    f"Vendure user {self._settings.credentials.get('username')!r} may not do"
                    f" this: {answer.errors[0].get('message')}",
                    platform_code="FORBIDDEN",
                )
        return answer

    async def _ensure_login(self, stale: str | None) -> str:
        async with self._login_lock:  # concurrent pushes share one login
            if self._token is None or self._token == stale:
                await self._login()
            assert self._token is not None
            return self._token

    async def _login(self) -> None:
        response = await self._send(
            gql.LOGIN,
            {
                "username": self._settings.credentials.get("username", ""),
                "password": self._settings.credentials.get("password", ""),
            },
            None,
            None,
        )
        answer = _answer(response, outcome_unknown=False)
        if answer.errors:
            raise _classify_error(answer.errors[0])
        result = answer.data.get("login") or {}
        if "errorCode" in result:
            raise _rejection(result, default=RejectionCode.AUTH_FAILED)
        token = response.headers.get("vendure-auth-token")
        if not token:
            raise PushRejected(
                RejectionCode.INVALID_RESPONSE,
                "Vendure's login answer has no vendure-auth-token header; is the Admin API"
                " configured with authOptions.tokenMethod 'bearer'?",
            )
        self._token = token

    async def _post(
        self,
        document: str,
        variables: Mapping[str, Any],
        token: str,
        currency: str | None,
        outcome_unknown: bool,
    ) -> _Answer:
        response = await self._send(document, variables, token, currency)
        return _answer(response, outcome_unknown=outcome_unknown)

    async def _send(
        self,
        document: str,
        variables: Mapping[str, Any],
        token: str | None,
        currency: str | None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = self._client.build_request(
            "POST",
            "",
            params={"currencyCode": currency} if currency else None,
            headers=headers,
            json={"query": document, "variables": variables},
        )
        return await http.send(self._client, request)


# -- answers and errors ------------------------------------------------------------------


def _answer(response: httpx.Response, *, outcome_unknown: bool) -> _Answer:
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
    return _Answer(body.get("data") or {}, body.get("errors") or [])


def _forbidden(answer: _Answer) -> bool:
    return any(_code(error) == "FORBIDDEN" for error in answer.errors)


def _code(error: Mapping[str, Any]) -> str | None:
    extensions = error.get("extensions")
    code = extensions.get("code") if isinstance(extensions, Mapping) else None
    return str(code) if code is not None else None


def _is_unique_violation(error: Mapping[str, Any]) -> bool:
    message = str(error.get("message", "")).lower()
    return "unique" in message or "duplicate key" in message


def _classify_error(error: Mapping[str, Any], *, sku: str | None = None) -> PushRejected:
    """A top-level GraphQL error as a rejection: Vendure's errors here are about the
    request (unknown entity, bad input), not about the moment."""
    message = str(error.get("message", "Vendure refused the request"))
    code = _code(error)
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


def _rejection(
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


def _transitioned(answer: _Answer) -> bool:
    result = answer.data.get(gql.TRANSITION) if answer.data else None
    return isinstance(result, Mapping) and result.get("__typename") == "Order"


def _check_settled(answer: _Answer) -> PlatformOrder:
    """The settle document's answer; everything but a settled order is a rejection (the
    caller deletes the draft, which Vendure only allows while it is one)."""
    failed_at = {str(e["path"][0]): e for e in answer.errors if e.get("path")}
    for alias in (gql.SHIPPING_METHOD, gql.TRANSITION, gql.PAYMENT):
        error = failed_at.get(alias)
        if error is not None:
            raise _classify_error(error)
        result = answer.data.get(alias)
        if isinstance(result, Mapping) and "errorCode" in result:
            raise _rejection(result)
    if answer.errors:
        raise _classify_error(answer.errors[0])
    payment = answer.data.get(gql.PAYMENT)
    try:
        if not isinstance(payment, Mapping) or payment["state"] in LEFTOVER_STATES:
            raise KeyError("state")
        return _platform_order(payment)
    except (KeyError, TypeError, ValueError):
        # The payment call went through, its answer is not what we asked for: the retry's
        # find_order tells whether the order was placed.
        raise PushRetryable(f"Vendure did not confirm the order: {payment!r}"[:300]) from None


def _platform_order(item: Mapping[str, Any]) -> PlatformOrder:
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
_SHAPE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)


def _unexpected_shape(error: Exception) -> PushRejected:
    return PushRejected(
        RejectionCode.INVALID_RESPONSE,
        f"Vendure answered an unexpected shape ({type(error).__name__}: {error})"[:300],
    )


def _unreadable(what: str, answer: _Answer) -> PushRejected:
    return PushRejected(
        RejectionCode.INVALID_RESPONSE, f"Vendure's answer to {what} has an unexpected shape"
    )


CONNECTOR = VendureConnector
