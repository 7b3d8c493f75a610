"""WooCommerce connector (REST API v3, ``/wp-json/wc/v3``).

**Auth.** A REST API key's consumer key and secret. WooCommerce accepts them over HTTPS as
HTTP Basic (the default here) or as ``consumer_key``/``consumer_secret`` query parameters
(option ``auth=query``, for hosts that strip the ``Authorization`` header); over plain
HTTP it only accepts OAuth 1.0a signatures, which this connector does not make: a store
must be reached over HTTPS (the tests' loopback fake accepts Basic over HTTP, as a store
behind a TLS-terminating proxy does).

**The order.** ``POST /orders`` with ``set_paid: true`` (WooCommerce then records the
payment and reduces stock itself), ``currency``, billing and shipping, line items by
product id (looked up by SKU, ``GET /products?sku=A,B``, which also returns variations:
they are booked as ``variation_id`` under their ``parent_id``) with ``subtotal`` (before
discount) and ``total`` (after it) so the discount is booked per line, one shipping line,
and our tax (one fee per rate, and the shipping's) and duties as fee lines without tax
(``tax_status: none``): WooCommerce's line tax fields are read-only and recomputed from
the store's own tax rates, which could not book what the buyer actually paid. A store
that has tax rates for our buyers' countries should set ``tax_class`` (e.g.
``zero-rate``) so WooCommerce does not add its own tax on top. Our order id goes in
``meta_data`` (``_orderbridge_order_id``), the payment reference in ``transaction_id``, the
buyer's note in ``customer_note``. A guest order by default; with ``customer_mode=email``
it is booked to the customer account with the buyer's e-mail (``GET /customers?email=``),
if any.

**Checks WooCommerce does not make.** ``POST /orders`` checks neither stock nor addresses
(woocommerce-rest-api#166: it is a back-office API), so the connector refuses
``OUT_OF_STOCK`` from the products' ``stock_status``/``stock_quantity``/``backorders``
before creating, and ``INVALID_ADDRESS`` for an address without street, city or country.
Between that check and the order another sale can take the last item (WooCommerce then
goes negative rather than refusing).

**Finding an order by our id.** The orders list cannot filter on meta data, and its
``search`` covers addresses, e-mail and item names only. ``find_order`` therefore pages
through the orders created in the last ``lookup_days`` (default 3; option), newest first,
100 per page, and matches ``meta_data``. The push job's retries fall well inside that
window; a manual "retry push" of an order older than it cannot see an order created then.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from orderbridge.connectors import http
from orderbridge.connectors.mapping import require_address_fields
from orderbridge.connectors.port import (
    ConnectionCheck,
    ConnectionSettings,
    PlatformOrder,
    PushAddress,
    PushOrder,
    PushRejected,
    PushRetryable,
    RejectionCode,
)

META_KEY = "_orderbridge_order_id"
PAGE_SIZE = 100
DEFAULT_LOOKUP_DAYS = 3
MAX_LOOKUP_PAGES = 50  # 5,000 orders; a store busier than that should shorten lookup_days


# The address fields the platform requires -> the PushAddress attribute each comes from.
_REQUIRED_ADDRESS_FIELDS = {
    "address_1": "line1",
    "city": "city",
    "country": "country",
}


class WooCommerceConnector:
    """Pushes orders into WooCommerce through its REST API v3 (see the module docstring)."""

    platform = "woocommerce"
    credential_fields = ("consumer_key", "consumer_secret")
    option_fields = (
        "auth",
        "customer_mode",
        "order_status",
        "payment_method",
        "shipping_method_id",
        "tax_class",
        "lookup_days",
    )

    def __init__(
        self, settings: ConnectionSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._options = settings.options
        key = settings.credentials.get("consumer_key", "")
        secret = settings.credentials.get("consumer_secret", "")
        self._query_auth = (
            {"consumer_key": key, "consumer_secret": secret}
            if settings.options.get("auth") == "query"
            else {}
        )
        root = settings.base_url.rstrip("/").removesuffix("/wp-json/wc/v3")
        self._client = http.build_client(
            settings,
            base_url=f"{root}/wp-json/wc/v3",
            headers={"Content-Type": "application/json"},
            transport=transport,
        )
        if not self._query_auth:
            self._client.auth = httpx.BasicAuth(key, secret)

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- the port --------------------------------------------------------------------------

    async def create_order(self, order: PushOrder) -> PlatformOrder:
        require_address_fields(order, _REQUIRED_ADDRESS_FIELDS)
        wanted: dict[str, int] = {}
        for line in order.lines:
            wanted[line.sku] = wanted.get(line.sku, 0) + line.quantity
        products = await self._products(list(wanted))
        short = tuple(sku for sku, qty in wanted.items() if not _can_sell(products[sku], qty))
        if short:
            raise PushRejected(
                RejectionCode.OUT_OF_STOCK,
                f"Not enough stock in WooCommerce for {', '.join(short)}",
                skus=short,
            )
        body = order_body(order, products, self._options)
        if self._options.get("customer_mode") == "email":
            body["customer_id"] = await self._customer_id(order.email)
        answer = await self._call("POST", "/orders", body=body, creating=True)
        try:
            return _platform_order(answer)
        except (KeyError, TypeError, ValueError):
            raise PushRetryable(
                "POST /orders: answer without id/number; the retry looks the order up"
            ) from None

    async def find_order(self, order_id: str) -> PlatformOrder | None:
        given = self._options.get("lookup_days", "")
        days = int(given) if given.isdigit() else DEFAULT_LOOKUP_DAYS
        after = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S")
        for page in range(1, MAX_LOOKUP_PAGES + 1):
            params = {
                "after": after,
                "dates_are_gmt": "true",
                "orderby": "date",
                "order": "desc",
                "per_page": str(PAGE_SIZE),
                "page": str(page),
                "_fields": "id,number,status,total,currency,meta_data",
            }
            answer = await self._call("GET", "/orders", params=params)
            if not isinstance(answer, list):
                raise PushRejected(
                    RejectionCode.INVALID_RESPONSE, f"GET /orders: unexpected {answer!r:.200}"
                )
            try:
                for candidate in answer:
                    if _tagged(candidate) == order_id:
                        return _platform_order(candidate)
            except (KeyError, TypeError, ValueError, AttributeError):
                raise PushRejected(
                    RejectionCode.INVALID_RESPONSE, f"GET /orders: unexpected {answer!r:.200}"
                ) from None
            if len(answer) < PAGE_SIZE:
                return None
        return None

    async def test_connection(self) -> ConnectionCheck:
        try:
            answer = await self._call("GET", "/orders", params={"per_page": "1", "_fields": "id"})
            if not isinstance(answer, list) or not all(
                isinstance(order, dict) and "id" in order for order in answer
            ):
                raise PushRejected(
                    RejectionCode.INVALID_RESPONSE, f"GET /orders: unexpected {answer!r:.200}"
                )
        except PushRejected as rejected:
            return ConnectionCheck(False, rejected.detail, rejected.code)
        except PushRetryable as retryable:
            return ConnectionCheck(False, retryable.detail)
        return ConnectionCheck(True, "WooCommerce answered and the key may read orders")

    async def _customer_id(self, email: str) -> int:
        """With ``customer_mode=email``: the id of the customer account with the buyer's
        e-mail, 0 (a guest order) when there is none."""
        answer = await self._call("GET", "/customers", params={"email": email, "role": "all"})
        try:
            return int(answer[0]["id"]) if answer else 0
        except (KeyError, TypeError, ValueError, IndexError):
            raise PushRejected(
                RejectionCode.INVALID_RESPONSE, f"GET /customers: unexpected {answer!r:.200}"
            ) from None

    # -- catalogue ---------------------------------------------------------------------------

    async def _products(self, skus: list[str]) -> dict[str, Mapping[str, Any]]:
        params = {"sku": ",".join(skus), "per_page": str(PAGE_SIZE)}
        answer = await self._call("GET", "/products", params=params)
        try:
            found = {product["sku"]: product for product in answer}
        except (KeyError, TypeError):
            raise PushRejected(
                RejectionCode.INVALID_RESPONSE, f"GET /products: unexpected {answer!r:.200}"
            ) from None
        missing = tuple(sku for sku in skus if sku not in found)
        if missing:
            raise PushRejected(
                RejectionCode.PRODUCT_NOT_FOUND,
                f"No WooCommerce product with SKU {', '.join(missing)}",
                skus=missing,
            )
        parents = tuple(sku for sku in skus if found[sku].get("type") in ("variable", "grouped"))
        if parents:
            raise PushRejected(
                RejectionCode.PRODUCT_NOT_FOUND,
                f"{', '.join(parents)}: a variable or grouped product is not sold by itself; "
                "the order must name the variation's SKU",
                skus=parents,
            )
        return found

    # -- HTTP ------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        creating: bool = False,
    ) -> Any:
        request = self._client.build_request(
            method,
            path,
            params={**(params or {}), **self._query_auth},
            content=None if body is None else json.dumps(body),
        )
        response = await http.send(self._client, request)
        _raise_for_answer(response)
        return http.decode_json(response, outcome_unknown=creating)


def order_body(
    order: PushOrder, products: Mapping[str, Mapping[str, Any]], options: Mapping[str, str]
) -> dict[str, Any]:
    """The ``POST /orders`` body. Amounts are decimal strings, as WooCommerce writes them."""
    tax_class = options.get("tax_class")
    lines = []
    for line in order.lines:
        subtotal = line.unit_price * line.quantity
        product = products[line.sku]
        item: dict[str, Any] = {
            # a variation is booked under its parent product, as WooCommerce stores it
            **(
                {"product_id": product["parent_id"], "variation_id": product["id"]}
                if product.get("type") == "variation" and product.get("parent_id")
                else {"product_id": product["id"]}
            ),
            "quantity": line.quantity,
            "subtotal": str(subtotal),
            "total": str(subtotal - line.discount),
        }
        if tax_class:
            item["tax_class"] = tax_class
        lines.append(item)
    fees = [
        {"name": name, "total": str(amount), "tax_status": "none"}
        for name, amount in (*_tax_fees(order), ("Duties", order.totals.duties))
        if amount
    ]
    return {
        "status": options.get("order_status", "processing"),
        "currency": order.currency,
        "set_paid": True,
        "payment_method": options.get("payment_method", order.source_name),
        "payment_method_title": f"{order.payment_method} ({order.source_name})",
        "transaction_id": order.payment_reference,
        "customer_note": order.customer_note or "",
        "billing": {**_address(order.billing), "email": order.email, "phone": _phone(order)},
        "shipping": _address(order.shipping_address),
        "line_items": lines,
        "shipping_lines": [
            {
                "method_id": options.get("shipping_method_id", "flat_rate"),
                "method_title": order.shipping.method,
                "total": str(order.shipping.price),
            }
        ],
        "fee_lines": fees,
        "meta_data": [
            {"key": META_KEY, "value": order.order_id},
            {"key": "_orderbridge_note", "value": order.note},
        ],
    }


def _tax_fees(order: PushOrder) -> list[tuple[str, Decimal]]:
    """The tax the buyer paid, one fee per rate ("Tax 20%") and the shipping's, so the
    merchant's books see the rates; together they are ``totals.tax``."""
    by_rate: dict[Decimal, Decimal] = {}
    for line in order.lines:
        by_rate[line.tax_rate] = by_rate.get(line.tax_rate, Decimal(0)) + line.tax
    fees = [(f"Tax {rate.normalize():f}%", amount) for rate, amount in by_rate.items()]
    return [*fees, ("Shipping tax", order.shipping.tax)]


def _address(address: PushAddress) -> dict[str, str]:
    return {
        "first_name": address.first_name,
        "last_name": address.last_name,
        "company": address.company or "",
        "address_1": address.line1,
        "address_2": address.line2 or "",
        "city": address.city,
        "state": address.region or "",
        "postcode": address.postal_code or "",
        "country": address.country,
        "phone": address.phone or "",
    }


def _phone(order: PushOrder) -> str:
    return order.billing.phone or order.phone or ""


def _can_sell(product: Mapping[str, Any], qty: int) -> bool:
    if product.get("stock_status") == "outofstock":
        return False
    if not product.get("manage_stock") or product.get("backorders", "no") != "no":
        return True
    stock = product.get("stock_quantity")
    return stock is None or Decimal(str(stock)) >= qty


def _tagged(order: Mapping[str, Any]) -> str | None:
    for meta in order.get("meta_data") or []:
        if meta.get("key") == META_KEY:
            return str(meta.get("value"))
    return None


def _platform_order(answer: Any) -> PlatformOrder:
    details = {key: str(answer[key]) for key in ("status", "total", "currency") if key in answer}
    return PlatformOrder(id=str(int(answer["id"])), number=str(answer["number"]), details=details)


# WooCommerce / WP REST error codes -> ours (first match on a prefix).
_ERROR_CODES: tuple[tuple[str, RejectionCode], ...] = (
    ("woocommerce_rest_invalid_product", RejectionCode.PRODUCT_NOT_FOUND),
    ("woocommerce_rest_invalid_variation", RejectionCode.PRODUCT_NOT_FOUND),
    ("woocommerce_rest_invalid_shipping", RejectionCode.SHIPPING_UNAVAILABLE),
    ("woocommerce_rest_authentication_error", RejectionCode.AUTH_FAILED),
    ("woocommerce_rest_cannot_", RejectionCode.PERMISSION_DENIED),
    ("rest_no_route", RejectionCode.NOT_FOUND),
)


def error_code(body: Any) -> tuple[str, str, Mapping[str, Any]]:
    """``(code, message, invalid params)`` of a WP REST error body."""
    if not isinstance(body, dict):
        return "", "", {}
    data = body.get("data")
    params = data.get("params") if isinstance(data, dict) else None
    return (
        str(body.get("code") or ""),
        str(body.get("message") or ""),
        params if isinstance(params, dict) else {},
    )


def _raise_for_answer(response: httpx.Response) -> None:
    http.raise_for_status(response)
    status = response.status_code
    if status < 400:
        return
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    code, message, params = error_code(body)
    detail = (
        f"{response.request.method} {response.request.url.path}: "
        f"{message or http.excerpt(response)} ({code or status})"
    )
    platform_code = code or str(status)
    if code == "rest_invalid_param":
        fields = " ".join(f"{name} {text}" for name, text in params.items()).lower()
        detail += f": {fields}" if fields else ""
        if "email" in fields:
            raise PushRejected(RejectionCode.INVALID_CUSTOMER, detail, platform_code=platform_code)
        if "billing" in fields or "shipping" in fields:
            raise PushRejected(RejectionCode.INVALID_ADDRESS, detail, platform_code=platform_code)
        if "currency" in fields:
            raise PushRejected(
                RejectionCode.CURRENCY_UNSUPPORTED, detail, platform_code=platform_code
            )
    for prefix, rejection in _ERROR_CODES:
        if code.startswith(prefix):
            raise PushRejected(rejection, detail, platform_code=platform_code)
    raise PushRejected(RejectionCode.REJECTED, detail, platform_code=platform_code)
