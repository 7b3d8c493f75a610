"""Shopify: orders through the Admin GraphQL API (``orderCreate``).

Connection: ``base_url`` is the shop (``https://acme.myshopify.com``), credential
``access_token`` (a custom app's Admin API token with ``write_orders``, ``read_products``),
options ``api_version`` (default ``DEFAULT_API_VERSION``) and ``discount_code`` (the code
the order's discount is booked under, default ``orderbridge``).

The mapping (docs/plug-and-play.md, "Shopify"):

- each line's SKU is looked up first (``productVariants(query: "sku:…")``); the line is
  booked against that variant with our unit price, tax line and quantity;
  ``inventoryBehaviour: DECREMENT_OBEYING_POLICY`` makes Shopify refuse an item that is
  out of stock (``INVENTORY_CLAIM_FAILED``) instead of overselling;
- ``orderCreate`` takes one discount per order, so the lines' discounts are booked as one
  fixed amount (``itemFixedDiscountCode``);
- shipping is a shipping line with its tax line; duties, which Shopify's ``orderCreate``
  cannot book, are a custom line without shipping or tax;
- money is ``shopMoney`` in the ``PushOrder`` currency (``currency``); when the order is
  pushed in the store's base currency and the buyer paid in another, the buyer's amounts
  are added as ``presentmentMoney`` (converted back with the order's rate, to the cent);
- the order is marked paid with one successful ``SALE`` transaction carrying the payment
  reference; our order id is the ``sourceIdentifier`` (and a custom attribute), the
  channel the ``sourceName``, plus a tag and the note.

Finding an order: ``orders(query: "source_identifier:…")``, checked against the returned
``sourceIdentifier``. Shopify's search index lags writes by a few seconds, so a lookup right
after a timed-out create can miss the order; the push job retries after a minute or more.

Throttling: the GraphQL API answers a throttled call with a ``THROTTLED`` error and the
bucket's state in ``extensions.cost.throttleStatus``; the wait until the call's cost is
restored, ``(requestedQueryCost - currentlyAvailable) / restoreRate``, is the
``retry_after``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import httpx

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
from orderbridge.connectors.shopify_order import order_input

DEFAULT_API_VERSION = "2026-10"
API_VERSION = re.compile(r"20\d\d-(01|04|07|10)|unstable")
DEFAULT_DISCOUNT_CODE = "orderbridge"
VARIANTS_PER_QUERY = 100

SHOP_QUERY = "query orderbridgeShop { shop { name currencyCode } }"

VARIANTS_QUERY = """
query orderbridgeVariants($query: String!, $first: Int!) {
  productVariants(first: $first, query: $query) {
    nodes { id sku }
  }
}
"""

# Newest first, and 50 of them: should the search ever ignore the filter, the order a
# failed push just created is still among the ones checked (an exact match either way).
FIND_QUERY = """
query orderbridgeFind($query: String!) {
  orders(first: 50, query: $query, sortKey: CREATED_AT, reverse: true) {
    nodes { id name sourceIdentifier }
  }
}
"""

CREATE_MUTATION = """
mutation orderbridgeCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    order {
      id
      name
      sourceIdentifier
      totalPriceSet { shopMoney { amount currencyCode } }
    }
    userErrors { field message code }
  }
}
"""


class ShopifyConnector:
    """``Connector`` for Shopify's Admin GraphQL API."""

    platform = "shopify"
    credential_fields = ("access_token",)
    option_fields = ("api_version", "discount_code")

    def __init__(
        self, settings: ConnectionSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        version = settings.options.get("api_version") or DEFAULT_API_VERSION
        if not API_VERSION.fullmatch(version):
            raise ValueError(
                f"options.api_version must be a Shopify API version (2026-10), not {version!r}"
            )
        self._discount_code = settings.options.get("discount_code") or DEFAULT_DISCOUNT_CODE
        self._path = f"/admin/api/{version}/graphql.json"
        self._client = http.build_client(
            settings,
            base_url=settings.base_url.rstrip("/"),
            headers={"X-Shopify-Access-Token": settings.credentials.get("access_token", "")},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def test_connection(self) -> ConnectionCheck:
        try:
            data = await self._graphql(SHOP_QUERY, {})
            shop = data["shop"]
            detail = f"connected to {shop['name']} ({shop['currencyCode']})"
        except PushRejected as rejected:
            return ConnectionCheck(ok=False, detail=rejected.detail, code=rejected.code)
        except PushError as failed:
            return ConnectionCheck(ok=False, detail=failed.detail)
        except (KeyError, TypeError):
            return ConnectionCheck(
                ok=False,
                detail="unexpected answer to the shop query",
                code=RejectionCode.INVALID_RESPONSE,
            )
        return ConnectionCheck(ok=True, detail=detail)

    async def find_order(self, order_id: str) -> PlatformOrder | None:
        data = await self._graphql(
            FIND_QUERY, {"query": f"source_identifier:{search_value(order_id)}"}
        )
        try:
            nodes = data["orders"]["nodes"]
            for node in nodes:
                if node["sourceIdentifier"] == order_id:
                    return PlatformOrder(id=str(node["id"]), number=str(node["name"]))
        except (KeyError, TypeError) as exc:
            raise PushRejected(
                RejectionCode.INVALID_RESPONSE, f"unexpected orders answer: {data!r:.300}"
            ) from exc
        return None

    async def create_order(self, order: PushOrder) -> PlatformOrder:
        check_address(order.shipping_address, "shipping")
        check_address(order.billing, "billing")
        variants = await self._variants([line.sku for line in order.lines])
        variables = {
            "order": order_input(order, variants, discount_code=self._discount_code),
            "options": {
                "inventoryBehaviour": "DECREMENT_OBEYING_POLICY",
                "sendReceipt": False,
                "sendFulfillmentReceipt": False,
            },
        }
        data = await self._graphql(CREATE_MUTATION, variables, outcome_unknown=True)
        try:
            payload = data["orderCreate"]
            errors = payload.get("userErrors") or []
            if errors:
                raise user_errors_rejection(errors, order)
            created = payload["order"]
            total = created["totalPriceSet"]["shopMoney"]
            return PlatformOrder(
                id=str(created["id"]),
                number=str(created["name"]),
                details={"total": f"{total['amount']} {total['currencyCode']}"},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            # The mutation ran; whether it created the order is unknown: retry, which
            # looks the order up first.
            raise PushRetryable(f"unexpected orderCreate answer: {data!r:.300}") from exc

    async def _variants(self, skus: Sequence[str]) -> dict[str, str]:
        """SKU -> variant id for every SKU; unknown SKUs are ``PRODUCT_NOT_FOUND``."""
        wanted = list(dict.fromkeys(skus))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), VARIANTS_PER_QUERY):
            chunk = wanted[start : start + VARIANTS_PER_QUERY]
            query = " OR ".join(f"sku:{search_value(sku)}" for sku in chunk)
            data = await self._graphql(VARIANTS_QUERY, {"query": query, "first": 250})
            try:
                for node in data["productVariants"]["nodes"]:
                    # Search matches loosely; only an exact SKU counts. First one wins.
                    if node["sku"] in chunk and node["sku"] not in found:
                        found[node["sku"]] = str(node["id"])
            except (KeyError, TypeError) as exc:
                raise PushRejected(
                    RejectionCode.INVALID_RESPONSE, f"unexpected variants answer: {data!r:.300}"
                ) from exc
        missing = tuple(sku for sku in wanted if sku not in found)
        if missing:
            raise PushRejected(
                RejectionCode.PRODUCT_NOT_FOUND,
                f"no Shopify variant with SKU {', '.join(missing)}",
                skus=missing,
            )
        return found

    async def _graphql(
        self, query: str, variables: Mapping[str, Any], *, outcome_unknown: bool = False
    ) -> dict[str, Any]:
        request = self._client.build_request(
            "POST", self._path, json={"query": query, "variables": variables}
        )
        response = await http.send(self._client, request)
        body: Any = None
        if response.status_code == 429:
            body = _quiet_json(response)
            http.raise_for_status(response, retry_after=throttle_wait(body))
        http.raise_for_status(response)
        if response.status_code == 404:
            raise PushRejected(
                RejectionCode.NOT_FOUND,
                f"no Shopify Admin API at {response.request.url} (shop or API version)",
                platform_code="404",
            )
        if response.status_code in (402, 423):
            raise PushRejected(
                RejectionCode.REJECTED,
                f"the shop is unavailable ({response.status_code}: {http.excerpt(response)})",
                platform_code=str(response.status_code),
            )
        if response.status_code != 200:
            raise PushRejected(
                RejectionCode.REJECTED,
                f"Shopify answered {response.status_code}: {http.excerpt(response)}",
                platform_code=str(response.status_code),
            )
        body = http.decode_json(response, outcome_unknown=outcome_unknown)
        if not isinstance(body, dict):
            raise http.unexpected(response, outcome_unknown=outcome_unknown)
        errors = body.get("errors")
        if errors:
            raise graphql_errors(errors, body, outcome_unknown=outcome_unknown)
        data = body.get("data")
        if not isinstance(data, dict):
            raise http.unexpected(response, outcome_unknown=outcome_unknown)
        return data


def _quiet_json(response: httpx.Response) -> Any:
    try:
        return http.decode_json(response)
    except PushError:
        return None


def throttle_wait(body: Any) -> float | None:
    """Seconds until the bucket holds the throttled call's cost again."""
    try:
        cost = body["extensions"]["cost"]
        status = cost["throttleStatus"]
        missing = Decimal(cost["requestedQueryCost"]) - Decimal(status["currentlyAvailable"])
        rate = Decimal(status["restoreRate"])
    except (KeyError, TypeError, ArithmeticError, ValueError):
        return None
    if rate <= 0:
        return None
    return max(0.0, float(missing / rate))


def graphql_errors(errors: Any, body: Mapping[str, Any], *, outcome_unknown: bool) -> PushError:
    """The port error for a response's top-level ``errors``."""
    if not isinstance(errors, list):  # e.g. {"errors": "[API] Invalid API key ..."}
        return PushRejected(RejectionCode.REJECTED, f"Shopify refused the call: {errors!s:.300}")
    codes = {
        str(error.get("extensions", {}).get("code", ""))
        for error in errors
        if isinstance(error, dict)
    }
    messages = "; ".join(
        str(error.get("message", error)) if isinstance(error, dict) else str(error)
        for error in errors
    )
    if "THROTTLED" in codes:
        return PushRetryable(
            f"Shopify throttled the call: {messages}",
            retry_after=throttle_wait(body),
            platform_code="THROTTLED",
        )
    if "ACCESS_DENIED" in codes:
        return PushRejected(
            RejectionCode.PERMISSION_DENIED,
            f"Shopify denied access: {messages}",
            platform_code="ACCESS_DENIED",
        )
    if "INTERNAL_SERVER_ERROR" in codes or "SERVICE_UNAVAILABLE" in codes:
        return PushRetryable(f"Shopify failed: {messages}", platform_code="INTERNAL_SERVER_ERROR")
    if outcome_unknown and body.get("data"):
        # Partial data with errors: the mutation may have run.
        return PushRetryable(f"Shopify answered with errors: {messages}")
    return PushRejected(RejectionCode.REJECTED, f"Shopify refused the call: {messages}")


def user_errors_rejection(errors: Sequence[Any], order: PushOrder) -> PushRejected:
    """``orderCreate`` ``userErrors`` as one rejection, coded after the first that maps."""
    detail = "; ".join(
        f"{'.'.join(map(str, error.get('field') or []))}: {error.get('message')}"
        for error in errors
    )
    code = RejectionCode.REJECTED
    platform_code = None
    skus: list[str] = []
    for error in errors:
        field = [str(part) for part in (error.get("field") or [])]
        path = ".".join(field)
        platform_code = platform_code or error.get("code")
        mapped = _user_error_code(str(error.get("code") or ""), path)
        if mapped is not RejectionCode.REJECTED and code is RejectionCode.REJECTED:
            code = mapped
        if "lineItems" in field:
            index = field[field.index("lineItems") + 1 :][:1]
            if index and index[0].isdigit() and int(index[0]) < len(order.lines):
                skus.append(order.lines[int(index[0])].sku)
    return PushRejected(
        code,
        f"Shopify refused the order: {detail}",
        platform_code=platform_code,
        skus=tuple(dict.fromkeys(skus)),
    )


def _user_error_code(code: str, path: str) -> RejectionCode:
    if code == "INVENTORY_CLAIM_FAILED":
        return RejectionCode.OUT_OF_STOCK
    if "Address" in path:
        return RejectionCode.INVALID_ADDRESS
    if "variantId" in path:
        return RejectionCode.PRODUCT_NOT_FOUND
    if "currency" in path.lower():
        return RejectionCode.CURRENCY_UNSUPPORTED
    if any(part in path for part in ("email", "customer", "phone")):
        return RejectionCode.INVALID_CUSTOMER
    return RejectionCode.REJECTED


def check_address(address: PushAddress, role: str) -> None:
    """Shopify accepts an order without a street or city; the merchant could not ship it.
    Refused here, before anything is created."""
    missing = [
        name
        for name, value in (
            ("street", address.line1),
            ("city", address.city),
            ("country", address.country),
        )
        if not (value or "").strip()
    ]
    if missing:
        raise PushRejected(
            RejectionCode.INVALID_ADDRESS,
            f"the {role} address has no {', '.join(missing)}",
        )


def search_value(value: str) -> str:
    """A value for Shopify's search syntax, quoted so spaces and colons stay in it."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
