"""A BigCommerce store that speaks the part of the REST Management API the connector uses:
``GET /v2/store``, ``GET /v3/catalog/variants?sku=``, ``GET/POST /v2/orders``, all under
``/stores/{store_hash}``.

What it enforces, as BigCommerce does:

- ``X-Auth-Token`` on every call (401), the store hash in the path (404);
- the V2 order body: ``billing_address`` and ``products`` required; an address needs a
  street, city, zip and country (``The field 'billing_address' is invalid.``); read-only
  fields such as ``currency_code`` cannot be written; a catalog product needs a known
  ``product_id`` and, when it has option variants, the variant's ``product_options``
  (``The options of one or more products are invalid.``); a custom product needs a name
  and prices;
- stock: more than ``inventory_level`` is 409 with an ``OutOfStock`` detail per product,
  otherwise the level goes down;
- amounts: the order keeps the subtotals and totals it is sent (as BigCommerce does) and
  answers them as 4-decimal strings, always in the store's currency;
- the orders list filters by ``min_date_created`` and ``channel_id``, sorts by id, pages
  with ``limit``/``page``, answers 204 when nothing matches, and has no ``external_id``
  filter (an unknown parameter is ignored);
- every answer carries the 30-second quota headers; a rate-limit fault is a 429 whose
  ``X-Rate-Limit-Time-Reset-Ms`` is the fault's ``retry_after``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from aiohttp import web

from orderbridge.connectors.port import ConnectionSettings
from tests.connectors.fakes import FakeOrder, FakeState, RecordedRequest, json_response, read_json

STORE_HASH = "abc123xyz"
TOKEN = "bc-api-token-0123456789"
STORE_CURRENCY = "USD"
QUOTA = 150
WINDOW_MS = 30_000
READ_ONLY = (
    "currency_code",
    "currency_exchange_rate",
    "currency_id",
    "cart_id",
    "coupon_discount",
    "order_source",
    "date_modified",
    "items_total",
)
ADDRESS_FIELDS = ("street_1", "city", "zip", "country_iso2")
FOUR = Decimal("0.0001")


class Refusal(Exception):
    def __init__(self, status: int, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: list[dict[str, Any]] = [{"status": status, "message": message}]
        if details is not None:
            self.body[0]["details"] = details


@dataclass
class CatalogVariant:
    id: int
    product_id: int
    sku: str
    price: Decimal
    inventory_level: int
    option_values: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StoredOrder:
    body: dict[str, Any]
    lines: list[tuple[CatalogVariant | None, dict[str, Any]]]
    created: datetime
    answer: dict[str, Any]


def four(value: Decimal) -> str:
    return str(value.quantize(FOUR))


def amount(value: Any, name: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise Refusal(400, f"The field '{name}' is invalid.") from None


class BigCommerceFake:
    platform = "bigcommerce"
    currencies = frozenset({STORE_CURRENCY})  # V2 orders: the store's currency only

    def __init__(self) -> None:
        self.state = FakeState()
        self.base_url = ""
        self.variants: dict[str, CatalogVariant] = {}
        self.stored: list[StoredOrder] = []
        self._next_order = 100
        self._requests_left = QUOTA

    # -- PlatformFake ---------------------------------------------------------------
    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            platform="bigcommerce",
            base_url=f"{self.base_url}/stores/{STORE_HASH}",
            credentials={"access_token": TOKEN},
        )

    def bad_credentials(self) -> ConnectionSettings:
        return ConnectionSettings(
            platform="bigcommerce",
            base_url=f"{self.base_url}/stores/{STORE_HASH}",
            credentials={"access_token": "revoked-token"},
        )

    def add_product(
        self,
        sku: str,
        *,
        stock: int,
        price: Decimal,
        options: list[dict[str, Any]] | None = None,
    ) -> None:
        """A catalog product with one variant; ``options`` (``[{"id", "option_id",
        "label"}]``) makes it an option variant that orders must name."""
        self.variants[sku] = CatalogVariant(
            id=self.state.next_id(),
            product_id=self.state.next_id(),
            sku=sku,
            price=price,
            inventory_level=stock,
            option_values=list(options or []),
        )

    def fail_next(self, fault: Any) -> None:
        self.state.fail_next(fault)

    @property
    def orders(self) -> list[FakeOrder]:
        return [self._fake_order(order) for order in self.stored]

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.log

    def stock(self, sku: str) -> int:
        return self.variants[sku].inventory_level

    def _fake_order(self, order: StoredOrder) -> FakeOrder:
        answer = order.answer
        catalog = [(variant, line) for variant, line in order.lines if variant is not None]
        return FakeOrder(
            id=str(answer["id"]),
            number=str(answer["id"]),
            external_ref=answer["external_id"],
            skus=[(variant.sku, int(line["quantity"])) for variant, line in catalog],
            currency=answer["currency_code"],
            total=Decimal(answer["total_inc_tax"]),
            email=answer["billing_address"]["email"],
            shipping=Decimal(answer["shipping_cost_ex_tax"]),
            tax=Decimal(answer["total_tax"]),
            discount=Decimal(answer["discount_amount"]),
            unit_prices={
                variant.sku: Decimal(str(line["price_ex_tax"])) for variant, line in catalog
            },
        )

    # -- HTTP -----------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._quota_and_auth])
        prefix = "/stores/{store_hash}"
        app.router.add_get(prefix + "/v2/store", self.store)
        app.router.add_get(prefix + "/v3/catalog/variants", self.catalog_variants)
        app.router.add_get(prefix + "/v2/orders", self.list_orders)
        app.router.add_post(prefix + "/v2/orders", self.create_order)
        return app

    def _quota_headers(self, *, reset_ms: int = 12_000) -> dict[str, str]:
        return {
            "X-Rate-Limit-Requests-Quota": str(QUOTA),
            "X-Rate-Limit-Requests-Left": str(self._requests_left),
            "X-Rate-Limit-Time-Window-Ms": str(WINDOW_MS),
            "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
        }

    @web.middleware
    async def _quota_and_auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.match_info.get("store_hash") != STORE_HASH:
            return json_response([{"status": 404, "message": "Store not found"}], status=404)
        if request.headers.get("X-Auth-Token") != TOKEN:
            if "/v3/" in request.path:
                return json_response(
                    {"status": 401, "title": "Unauthorized", "type": "about:blank"}, status=401
                )
            return json_response(
                [{"status": 401, "message": "You are not authorised to access this resource."}],
                status=401,
            )
        self._requests_left = self._requests_left - 1 if self._requests_left > 1 else QUOTA
        response: web.StreamResponse = await handler(request)
        for name, value in self._quota_headers().items():
            response.headers.setdefault(name, value)
        return response

    async def store(self, request: web.Request) -> web.StreamResponse:
        return json_response(
            {
                "id": STORE_HASH,
                "name": "Orderbridge Test Store",
                "domain": "orderbridge-test.mybigcommerce.com",
                "currency": STORE_CURRENCY,
                "currency_symbol": "$",
                "decimal_places": 2,
                "plan_name": "Standard",
            }
        )

    async def catalog_variants(self, request: web.Request) -> web.StreamResponse:
        sku = request.query.get("sku")
        found = [v for v in self.variants.values() if sku is None or v.sku == sku]
        data = [
            {
                "id": v.id,
                "product_id": v.product_id,
                "sku": v.sku,
                "price": float(v.price),
                "calculated_price": float(v.price),
                "inventory_level": v.inventory_level,
                "purchasing_disabled": False,
                "option_values": v.option_values,
            }
            for v in found
        ]
        return json_response(
            {
                "data": data,
                "meta": {
                    "pagination": {
                        "total": len(data),
                        "count": len(data),
                        "per_page": 50,
                        "current_page": 1,
                        "total_pages": 1,
                        "links": {"current": "?page=1&limit=50"},
                    }
                },
            }
        )

    async def list_orders(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        matching = list(self.stored)
        if "min_date_created" in query:
            since = _parse_date(query["min_date_created"])
            matching = [order for order in matching if order.created >= since]
        if "channel_id" in query:
            matching = [o for o in matching if str(o.answer["channel_id"]) == query["channel_id"]]
        if query.get("sort", "id:asc") in ("id:desc", "date_created:desc"):
            matching.reverse()
        limit = min(int(query.get("limit", 50)), 250)
        page = int(query.get("page", 1))
        chosen = matching[(page - 1) * limit : page * limit]
        if not chosen:
            return web.Response(status=204)
        return json_response([order.answer for order in chosen])

    async def create_order(self, request: web.Request) -> web.StreamResponse:
        fault = self.state.take_fault()
        if fault is not None and fault.kind == "rate_limited":
            self._requests_left = 0
            reset_ms = int((fault.retry_after or 1.0) * 1000)
            return json_response(
                {"status": 429, "title": "Too many requests"},
                status=429,
                headers=self._quota_headers(reset_ms=reset_ms),
            )
        if fault is not None and fault.kind == "server_error":
            return json_response([{"status": 500, "message": "Internal Server Error"}], status=500)
        if fault is not None and fault.kind == "timeout_before_create":
            await self.state.stall()
            return web.Response(status=504)
        try:
            body = await read_json(request)
            answer = self._create(body)
        except Refusal as refused:
            return json_response(refused.body, status=refused.status)
        except (ValueError, TypeError, AttributeError):
            return json_response(
                [{"status": 400, "message": "The request payload is not valid JSON."}],
                status=400,
            )
        if fault is not None and fault.kind == "timeout_after_create":
            await self.state.stall()
        return json_response(answer, status=201)

    # -- the platform's rules ---------------------------------------------------------
    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise Refusal(400, "The request payload is not valid.")
        for name in READ_ONLY:
            if name in body:
                raise Refusal(
                    400,
                    f"The field '{name}' cannot be written to. Please remove it from your "
                    "request before trying again.",
                )
        billing = body.get("billing_address")
        if not billing:
            raise Refusal(400, "The required field 'billing_address' was not supplied.")
        self._check_address(billing, "billing_address")
        for shipping in body.get("shipping_addresses") or []:
            self._check_address(shipping, "shipping_address")
        products = body.get("products")
        if not products:
            raise Refusal(400, "The required field 'products' was not supplied.")
        lines: list[tuple[CatalogVariant | None, dict[str, Any]]] = []
        for product in products:
            lines.append((self._line(product), product))
        shortages = [
            (variant, int(line["quantity"]))
            for variant, line in lines
            if variant is not None and int(line["quantity"]) > variant.inventory_level
        ]
        if shortages:
            raise Refusal(
                409,
                "Quantities of one or more products are out of stock or did not meet "
                "quantity requirements.",
                {
                    "errors": [
                        {
                            "type": "OutOfStock",
                            "product": {
                                "id": variant.product_id,
                                "name": variant.sku,
                                "inventory_level": variant.inventory_level,
                            },
                        }
                        for variant, _ in shortages
                    ]
                },
            )
        for variant, line in lines:
            if variant is not None:
                variant.inventory_level -= int(line["quantity"])
        answer = self._answer(body, lines)
        self.stored.append(StoredOrder(body, lines, datetime.now(UTC), answer))
        return answer

    @staticmethod
    def _check_address(address: Any, name: str) -> None:
        if not isinstance(address, dict) or not all(
            str(address.get(key) or "").strip() for key in ADDRESS_FIELDS
        ):
            raise Refusal(400, f"The field '{name}' is invalid.")

    def _line(self, product: dict[str, Any]) -> CatalogVariant | None:
        if int(product.get("quantity") or 0) <= 0:
            raise Refusal(400, "The field 'quantity' is invalid.")
        if "product_id" not in product:
            if not product.get("name") or "price_inc_tax" not in product:
                raise Refusal(400, "The field 'products' is invalid.")
            return None
        candidates = [v for v in self.variants.values() if v.product_id == product["product_id"]]
        if not candidates:
            raise Refusal(400, "The field 'product_id' is invalid.")
        chosen = {(o["id"], str(o["value"])) for o in product.get("product_options") or []}
        for variant in candidates:
            wanted = {(v["option_id"], str(v["id"])) for v in variant.option_values}
            if wanted == chosen:
                return variant
        raise Refusal(400, "The options of one or more products are invalid.")

    def _answer(
        self, body: dict[str, Any], lines: list[tuple[CatalogVariant | None, dict[str, Any]]]
    ) -> dict[str, Any]:
        def price(line: dict[str, Any], name: str, fallback: Decimal) -> Decimal:
            return amount(line[name], name) if name in line else fallback

        subtotal_ex = sum(
            (
                price(line, "price_ex_tax", variant.price if variant else Decimal(0))
                * int(line["quantity"])
                for variant, line in lines
            ),
            Decimal(0),
        )
        subtotal_inc = sum(
            (
                price(line, "price_inc_tax", variant.price if variant else Decimal(0))
                * int(line["quantity"])
                for variant, line in lines
            ),
            Decimal(0),
        )
        subtotal_ex = amount(body.get("subtotal_ex_tax", subtotal_ex), "subtotal_ex_tax")
        subtotal_inc = amount(body.get("subtotal_inc_tax", subtotal_inc), "subtotal_inc_tax")
        ship_ex = amount(body.get("shipping_cost_ex_tax", 0), "shipping_cost_ex_tax")
        ship_inc = amount(body.get("shipping_cost_inc_tax", ship_ex), "shipping_cost_inc_tax")
        discount = amount(body.get("discount_amount", 0), "discount_amount")
        total_ex = amount(
            body.get("total_ex_tax", subtotal_ex + ship_ex - discount), "total_ex_tax"
        )
        total_inc = amount(
            body.get("total_inc_tax", subtotal_inc + ship_inc - discount), "total_inc_tax"
        )
        self._next_order += 1
        created = datetime.now(UTC)
        return {
            "id": self._next_order,
            "customer_id": body.get("customer_id", 0),
            "date_created": format_datetime(created),
            "status_id": body.get("status_id", 1),
            "status": "Awaiting Fulfillment" if body.get("status_id") == 11 else "Pending",
            "subtotal_ex_tax": four(subtotal_ex),
            "subtotal_inc_tax": four(subtotal_inc),
            "shipping_cost_ex_tax": four(ship_ex),
            "shipping_cost_inc_tax": four(ship_inc),
            "discount_amount": four(discount),
            "total_ex_tax": four(total_ex),
            "total_inc_tax": four(total_inc),
            "total_tax": four(total_inc - total_ex),
            "items_total": sum(int(line["quantity"]) for _, line in lines),
            "payment_method": body.get("payment_method", "Manual"),
            "payment_provider_id": body.get("payment_provider_id"),
            "currency_code": STORE_CURRENCY,
            "default_currency_code": STORE_CURRENCY,
            "currency_exchange_rate": "1.0000000000",
            "external_id": body.get("external_id"),
            "external_source": body.get("external_source"),
            "staff_notes": body.get("staff_notes", ""),
            "customer_message": body.get("customer_message", ""),
            "channel_id": body.get("channel_id", 1),
            "order_source": "external",
            "billing_address": body["billing_address"],
        }


def _parse_date(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return parsedate_to_datetime(value)


@asynccontextmanager
async def start() -> AsyncIterator[BigCommerceFake]:
    fake = BigCommerceFake()
    async with fake.state.serve(fake.app()) as url:
        fake.base_url = url
        yield fake
