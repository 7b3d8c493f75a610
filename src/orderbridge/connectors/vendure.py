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
from orderbridge.connectors.vendure_answers import (
    LEFTOVER_STATES,
    SHAPE_ERRORS,
    Answer,
    check_settled,
    classify_error,
    error_code_of,
    forbidden,
    is_unique_violation,
    platform_order,
    read_answer,
    result_rejection,
    transitioned,
    unexpected_shape,
    unreadable,
)

DEFAULT_PAYMENT_METHOD = "orderbridge"
VARIANT_CACHE_SECONDS = 60.0


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
        except SHAPE_ERRORS as error:
            raise unexpected_shape(error) from error

    async def find_order(self, order_id: str) -> PlatformOrder | None:
        try:
            return await self._find(order_id)
        except SHAPE_ERRORS as error:
            raise unexpected_shape(error) from error

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
            raise classify_error(answer.errors[0])
        try:
            items = list(answer.data["orders"]["items"])
            placed = [platform_order(i) for i in items if i["state"] not in LEFTOVER_STATES]
        except (KeyError, TypeError, ValueError) as error:
            raise unreadable("orders", answer) from error
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
                raise classify_error(answer.errors[0])
            channel = answer.data["activeChannel"]
        except PushRejected as error:
            return ConnectionCheck(False, error.detail, error.code)
        except PushRetryable as error:
            return ConnectionCheck(False, error.detail)
        except SHAPE_ERRORS:
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
                result = check_settled(answer)
            except PushRejected:
                if transitioned(answer):  # out of Draft: no longer deletable
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
            raise classify_error(answer.errors[0])
        try:
            draft = answer.data["createDraftOrder"]
            draft_id: str = draft["id"]
            currency = draft["currencyCode"]
        except (KeyError, TypeError) as error:
            raise unreadable("createDraftOrder", answer) from error
        if currency != order.currency:  # a Vendure that ignores ?currencyCode=
            await self._delete_draft(draft_id)
            raise PushRejected(
                RejectionCode.CURRENCY_UNSUPPORTED,
                f"Vendure created the order in {currency}, not {order.currency}",
            )
        return draft_id

    def _check_draft(self, order: PushOrder, answer: Answer, *, trust_cache: bool) -> None:
        """Raise for the first field of the draft document that failed, in document order
        (a top-level error stops the document there; ErrorResults do not). An unknown
        variant or shipping method id may come from the cache: ``_StaleCache`` once."""
        failed_at = {str(e["path"][0]): e for e in answer.errors if e.get("path")}
        if answer.errors and not failed_at:  # the document was refused as a whole
            raise classify_error(answer.errors[0])
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
                if alias == gql.EXTERNAL_ID and is_unique_violation(error):
                    raise _ExternalIdTaken()
                if error_code_of(error) == "ENTITY_NOT_FOUND" and (
                    sku is not None or alias == gql.SHIPPING_METHOD
                ):
                    self._variants.pop(sku or "", None)
                    if alias == gql.SHIPPING_METHOD:
                        self._shipping_method_id = None
                    if trust_cache:
                        raise _StaleCache()
                rejection = classify_error(error, sku=sku)
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
                raise result_rejection(result, sku=sku)
        if answer.errors:
            raise classify_error(answer.errors[0])

    async def _first_eligible(self, draft_id: str) -> str:
        answer = await self._call(gql.ELIGIBLE_SHIPPING, {"orderId": draft_id})
        if answer.errors:
            raise classify_error(answer.errors[0])
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
                raise classify_error(answer.errors[0])
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
                raise classify_error(answer.errors[0])
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
            raise classify_error(answer.errors[0])

    async def _delete_draft(self, draft_id: str, *, quietly: bool = True) -> None:
        try:
            answer = await self._call(gql.DELETE_DRAFT, {"orderId": draft_id})
        except PushError:
            if quietly:
                return  # find_order deletes it on the next attempt
            raise
        if answer.errors and not quietly:
            raise classify_error(answer.errors[0])

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
    ) -> Answer:
        """One GraphQL request with the session token; one fresh login when Vendure says
        FORBIDDEN (no session, or an expired one), then FORBIDDEN means no permission."""
        token = self._token
        if token is None:
            token = await self._ensure_login(None)
        answer = await self._post(document, variables, token, currency, outcome_unknown)
        if forbidden(answer):
            token = await self._ensure_login(token)
            answer = await self._post(document, variables, token, currency, outcome_unknown)
            if forbidden(answer):
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
        answer = read_answer(response, outcome_unknown=False)
        if answer.errors:
            raise classify_error(answer.errors[0])
        result = answer.data.get("login") or {}
        if "errorCode" in result:
            raise result_rejection(result, default=RejectionCode.AUTH_FAILED)
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
    ) -> Answer:
        response = await self._send(document, variables, token, currency)
        return read_answer(response, outcome_unknown=outcome_unknown)

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


CONNECTOR = VendureConnector
