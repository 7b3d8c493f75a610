"""BigCommerce: orders through the REST Management API (``POST /v2/orders``).

Connection: ``base_url`` is the store's API path as the API account page shows it
(``https://api.bigcommerce.com/stores/{store_hash}``; a trailing ``/v2`` or ``/v3`` is
ignored), credential ``access_token`` (an API account with Orders modify, Products read
and Information & Settings read). Options: ``channel_id`` (book the orders in that channel,
which also narrows the lookup below), ``status_id`` (default 11, Awaiting Fulfillment),
``lookup_days`` (how far back ``find_order`` scans, default 7).

The mapping (docs/plug-and-play.md, "BigCommerce"):

- each SKU is looked up in the catalog (``GET /v3/catalog/variants?sku=``); the line is
  booked against its product, with the variant's options as ``product_options``, our
  unit price without and with tax, and the quantity; BigCommerce checks and decrements the
  stock itself (409 ``OutOfStock``);
- the lines' discounts are one ``discount_amount``; shipping ``shipping_cost_ex_tax`` /
  ``_inc_tax``; the order's subtotals and totals are sent as we computed them, so
  BigCommerce keeps our amounts to the cent; duties are a custom product line;
- V2 orders are always booked in the store's currency (``currency_code`` is read-only), so
  a ``PushOrder`` in another currency is ``CURRENCY_UNSUPPORTED``: such a connection must
  push in the store's base currency;
- our order id is ``external_id`` (write-once) with ``external_source`` ``orderbridge``;
  the note is ``staff_notes``, the buyer's note ``customer_message``.

Finding an order: the V2 orders list cannot filter by ``external_id``. ``find_order`` pages
through the newest orders of the last ``lookup_days`` (``min_date_created``, ``sort=id:desc``,
in the connection's channel when one is set) and matches ``external_id``. The push job only
asks after a failed push, within its retry window, so the order, if it exists, is among the
newest.

Rate limits: a store's quota is shared by every app and refilled every 30 seconds; a 429
waits ``X-Rate-Limit-Time-Reset-Ms``. When an answer says no request is left
(``X-Rate-Limit-Requests-Left: 0``), the connector makes no call until the window resets
and answers ``PushRetryable`` with the remaining wait instead of collecting 429s.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx
import pycountry

from orderbridge.connectors import http
from orderbridge.connectors.port import (
    ConnectionCheck,
    ConnectionSettings,
    PlatformOrder,
    PushAddress,
    PushError,
    PushOrder,
    PushRejected,
    PushRetryable,
    RejectionCode,
)
from orderbridge.connectors.regions import subdivision

EXTERNAL_SOURCE = "orderbridge"
AWAITING_FULFILLMENT = 11
DEFAULT_LOOKUP_DAYS = 7
PAGE_SIZE = 250
MAX_LOOKUP_PAGES = 40  # 10,000 orders: past that, a store needs ``channel_id``
PRICE_PLACES = Decimal("0.0001")
STORE_CACHE_SECONDS = 300.0


class Variant:
    __slots__ = ("options", "product_id", "sku")

    def __init__(self, sku: str, product_id: int, options: list[dict[str, Any]]) -> None:
        self.sku = sku
        self.product_id = product_id
        self.options = options


class BigCommerceConnector:
    """``Connector`` for BigCommerce's V2 orders and V3 catalog."""

    platform = "bigcommerce"
    credential_fields = ("access_token",)
    option_fields = ("channel_id", "status_id", "lookup_days")

    def __init__(
        self, settings: ConnectionSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        base = settings.base_url.rstrip("/")
        for suffix in ("/v2", "/v3"):
            base = base.removesuffix(suffix)
        if "/stores/" not in base:
            raise ValueError(
                "base_url must be the store's API path, "
                "https://api.bigcommerce.com/stores/{store_hash}"
            )
        options = settings.options
        self._channel_id = _whole_number(options, "channel_id", None)
        self._status_id = _whole_number(options, "status_id", AWAITING_FULFILLMENT) or 0
        days = _whole_number(options, "lookup_days", DEFAULT_LOOKUP_DAYS) or 0
        if days < 1:
            raise ValueError("options.lookup_days must be at least 1")
        self._lookup = timedelta(days=days)
        self._store_seen: tuple[float, dict[str, Any]] | None = None
        self._quota_empty_until: float | None = None  # time.monotonic()
        self._client = http.build_client(
            settings,
            base_url=base,
            headers={"X-Auth-Token": settings.credentials.get("access_token", "")},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def test_connection(self) -> ConnectionCheck:
        try:
            store = await self._store()
            detail = f"connected to {store.get('name')} ({store.get('currency')})"
        except PushRejected as rejected:
            return ConnectionCheck(ok=False, detail=rejected.detail, code=rejected.code)
        except PushError as failed:
            return ConnectionCheck(ok=False, detail=failed.detail)
        return ConnectionCheck(ok=True, detail=detail)

    async def find_order(self, order_id: str) -> PlatformOrder | None:
        since = datetime.now(UTC) - self._lookup
        params: dict[str, str | int] = {
            "min_date_created": since.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
            "sort": "id:desc",
            "limit": PAGE_SIZE,
        }
        if self._channel_id is not None:
            params["channel_id"] = self._channel_id
        for page in range(1, MAX_LOOKUP_PAGES + 1):
            orders = await self._call("GET", "/v2/orders", params={**params, "page": page})
            if orders is None:  # 204: no (more) orders
                return None
            if not isinstance(orders, list) or not all(
                isinstance(found, dict) and "id" in found for found in orders
            ):
                raise PushRejected(
                    RejectionCode.INVALID_RESPONSE, f"unexpected orders list: {orders!r:.300}"
                )
            for found in orders:
                if found.get("external_id") == order_id:
                    return _platform_order(found)
            if len(orders) < PAGE_SIZE:
                return None
        return None

    async def create_order(self, order: PushOrder) -> PlatformOrder:
        for role, address in (("billing", order.billing), ("shipping", order.shipping_address)):
            _check_address(address, role)
        currency = (await self._store(cached=True)).get("currency")
        if currency != order.currency:
            raise PushRejected(
                RejectionCode.CURRENCY_UNSUPPORTED,
                f"BigCommerce books API orders in the store's currency {currency}, "
                f"not {order.currency}: push this store's orders in its base currency",
            )
        variants = {line.sku: await self._variant(line.sku) for line in order.lines}
        body = order_body(order, variants, status_id=self._status_id, channel_id=self._channel_id)
        created = await self._call("POST", "/v2/orders", json=body, variants=variants)
        if not isinstance(created, dict) or "id" not in created:
            raise PushRetryable(f"unexpected answer to the order create: {created!r:.300}")
        return _platform_order(created)

    async def _store(self, *, cached: bool = False) -> dict[str, Any]:
        """``GET /v2/store``; a push reuses an answer up to ``STORE_CACHE_SECONDS`` old
        (the store's currency hardly ever changes, the quota is shared)."""
        now = time.monotonic()
        if cached and self._store_seen and now - self._store_seen[0] < STORE_CACHE_SECONDS:
            return self._store_seen[1]
        store = await self._call("GET", "/v2/store")
        if not isinstance(store, dict):
            raise PushRejected(
                RejectionCode.INVALID_RESPONSE, f"unexpected store answer: {store!r:.300}"
            )
        self._store_seen = (now, store)
        return store

    async def _variant(self, sku: str) -> Variant:
        found = await self._call("GET", "/v3/catalog/variants", params={"sku": sku})
        try:
            matches = [item for item in found["data"] if item["sku"] == sku]
            if not matches:
                raise PushRejected(
                    RejectionCode.PRODUCT_NOT_FOUND,
                    f"no BigCommerce variant with SKU {sku}",
                    skus=(sku,),
                )
            variant = matches[0]
            if variant.get("purchasing_disabled"):
                raise PushRejected(
                    RejectionCode.REJECTED,
                    f"purchasing is disabled for SKU {sku}",
                    skus=(sku,),
                )
            options = [
                {"id": value["option_id"], "value": str(value["id"])}
                for value in variant.get("option_values") or []
            ]
            return Variant(sku, int(variant["product_id"]), options)
        except (KeyError, TypeError, ValueError) as exc:
            raise PushRejected(
                RejectionCode.INVALID_RESPONSE, f"unexpected variants answer: {found!r:.300}"
            ) from exc

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        variants: Mapping[str, Variant] | None = None,
    ) -> Any:
        creating = method == "POST"
        self._wait_for_quota()
        request = self._client.build_request(method, path, params=params, json=json)
        response = await http.send(self._client, request)
        self._note_quota(response)
        if response.status_code == 429:
            http.raise_for_status(response, retry_after=quota_reset(response))
        http.raise_for_status(response)
        if response.status_code == 204:
            return None
        if response.status_code >= 400:
            raise rejection(response, variants or {})
        if response.status_code not in (200, 201):
            raise http.unexpected(response, outcome_unknown=creating)
        return http.decode_json(response, outcome_unknown=creating)

    def _wait_for_quota(self) -> None:
        """The store's quota is shared by every app: once an answer said none is left,
        the calls until the window refills would only earn 429s, so they are not made."""
        if self._quota_empty_until is None:
            return
        wait = self._quota_empty_until - time.monotonic()
        if wait <= 0:
            self._quota_empty_until = None
            return
        raise PushRetryable(
            "the store's API quota is used up until its 30-second window refills",
            retry_after=wait,
            platform_code="quota",
        )

    def _note_quota(self, response: httpx.Response) -> None:
        left = response.headers.get("X-Rate-Limit-Requests-Left")
        reset = quota_reset(response)
        if left is not None and left.strip() == "0" and reset:
            self._quota_empty_until = time.monotonic() + reset


def _whole_number(options: Mapping[str, str], name: str, default: int | None) -> int | None:
    """An option that must be a whole number; ``ValueError`` names it (the connections API
    turns that into a field error)."""
    value = options.get(name)
    if value is None or str(value).strip() == "":
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"options.{name} must be a whole number, not {value!r}") from None


def quota_reset(response: httpx.Response) -> float | None:
    """Seconds until the store's 30-second quota window refills."""
    value = response.headers.get("X-Rate-Limit-Time-Reset-Ms")
    try:
        return max(0.0, int(value) / 1000) if value is not None else None
    except ValueError:
        return None


def rejection(response: httpx.Response, variants: Mapping[str, Variant]) -> PushRejected:
    """A 4xx answer as a rejection. V2 errors are a list of
    ``{"status", "message", "details": {"errors": [{"type", "product"...}]}}``; V3 errors
    an object with ``title`` (and ``errors``)."""
    status = response.status_code
    try:
        body = http.decode_json(response)
    except PushRejected:
        body = None
    errors = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    messages = [
        str(error.get("message") or error.get("title") or error)
        for error in errors
        if isinstance(error, dict)
    ] or [http.excerpt(response)]
    detail = f"BigCommerce refused ({status}): {'; '.join(messages)}"
    code = str(status)
    lowered = " ".join(messages).lower()
    out_of_stock = _out_of_stock_skus(errors, variants)
    if status == 409 and (out_of_stock is not None or "out of stock" in lowered):
        return PushRejected(
            RejectionCode.OUT_OF_STOCK, detail, platform_code=code, skus=out_of_stock or ()
        )
    if status == 404:
        return PushRejected(RejectionCode.NOT_FOUND, detail, platform_code=code)
    if "address" in lowered or "'state'" in lowered or "'zip'" in lowered:
        return PushRejected(RejectionCode.INVALID_ADDRESS, detail, platform_code=code)
    if "customer" in lowered or "email" in lowered:
        return PushRejected(RejectionCode.INVALID_CUSTOMER, detail, platform_code=code)
    if "options of one or more products" in lowered or "product_id" in lowered:
        return PushRejected(RejectionCode.PRODUCT_NOT_FOUND, detail, platform_code=code)
    return PushRejected(RejectionCode.REJECTED, detail, platform_code=code)


def _out_of_stock_skus(
    errors: Sequence[Any], variants: Mapping[str, Variant]
) -> tuple[str, ...] | None:
    by_product: dict[Any, str] = {variant.product_id: sku for sku, variant in variants.items()}
    skus: list[str] = []
    seen = False
    for error in errors:
        if not isinstance(error, dict):
            continue
        for item in (error.get("details") or {}).get("errors") or []:
            if isinstance(item, dict) and item.get("type") == "OutOfStock":
                seen = True
                product = item.get("product") or {}
                sku = by_product.get(product.get("id")) if isinstance(product, dict) else None
                if sku:
                    skus.append(sku)
    return tuple(skus) if seen else None


def _platform_order(order: Mapping[str, Any]) -> PlatformOrder:
    details = {
        key: str(order[key])
        for key in ("status", "total_inc_tax", "currency_code")
        if order.get(key) is not None
    }
    return PlatformOrder(id=str(order["id"]), number=str(order["id"]), details=details)


def _check_address(address: PushAddress, role: str) -> None:
    missing = [
        name
        for name, value in (("street", address.line1), ("city", address.city))
        if not (value or "").strip()
    ]
    if missing or pycountry.countries.get(alpha_2=address.country.upper()) is None:
        raise PushRejected(
            RejectionCode.INVALID_ADDRESS,
            f"the {role} address has no {', '.join(missing) or 'known country'}",
        )


def _money(amount: Decimal) -> str:
    return str(amount)


def address_body(address: PushAddress, email: str) -> dict[str, Any]:
    """A V2 address: the country's name and code, the region as the state's full name
    when it names a subdivision of the country (BigCommerce matches state names)."""
    country = pycountry.countries.get(alpha_2=address.country.upper())
    state = subdivision(address.country, address.region)
    return {
        "first_name": address.first_name,
        "last_name": address.last_name,
        "company": address.company or "",
        "street_1": address.line1,
        "street_2": address.line2 or "",
        "city": address.city,
        "state": state.name if state else address.region or "",
        "zip": address.postal_code or "",
        "country": country.name if country is not None else address.country,
        "country_iso2": address.country.upper(),
        "phone": address.phone or "",
        "email": email,
    }


def order_body(
    order: PushOrder,
    variants: Mapping[str, Variant],
    *,
    status_id: int = AWAITING_FULFILLMENT,
    channel_id: int | None = None,
) -> dict[str, Any]:
    """The ``POST /v2/orders`` body for a ``PushOrder`` (store currency)."""
    products: list[dict[str, Any]] = []
    for line in order.lines:
        variant = variants[line.sku]
        # A line's tax is on its discounted amount; spread over the units it is the
        # per-unit price with tax BigCommerce shows. The totals below stay exact.
        unit_tax = (line.tax / line.quantity).quantize(PRICE_PLACES, rounding=ROUND_HALF_EVEN)
        product: dict[str, Any] = {
            "product_id": variant.product_id,
            "quantity": line.quantity,
            "price_ex_tax": _money(line.unit_price),
            "price_inc_tax": _money(line.unit_price + unit_tax),
        }
        if variant.options:
            product["product_options"] = variant.options
        products.append(product)
    totals = order.totals
    if totals.duties:
        products.append(
            {
                "name": "Duties and import taxes",
                "quantity": 1,
                "price_ex_tax": _money(totals.duties),
                "price_inc_tax": _money(totals.duties),
            }
        )
    line_tax = sum((line.tax for line in order.lines), Decimal(0))
    subtotal_ex = totals.items + totals.duties
    body: dict[str, Any] = {
        "customer_id": 0,
        "status_id": status_id,
        "billing_address": address_body(order.billing, order.email),
        "shipping_addresses": [
            {
                **address_body(order.shipping_address, order.email),
                "shipping_method": order.shipping.method,
            }
        ],
        "products": products,
        "subtotal_ex_tax": _money(subtotal_ex),
        "subtotal_inc_tax": _money(subtotal_ex + line_tax),
        "shipping_cost_ex_tax": _money(order.shipping.price),
        "shipping_cost_inc_tax": _money(order.shipping.price + order.shipping.tax),
        "discount_amount": _money(totals.discount),
        "total_ex_tax": _money(totals.total - totals.tax),
        "total_inc_tax": _money(totals.total),
        "payment_method": order.payment_method,
        "payment_provider_id": order.payment_reference,
        "external_id": order.order_id,
        "external_source": order.source_name or EXTERNAL_SOURCE,
        "staff_notes": order.note,
        "customer_message": order.customer_note or "",
    }
    if channel_id is not None:
        body["channel_id"] = channel_id
    return body
