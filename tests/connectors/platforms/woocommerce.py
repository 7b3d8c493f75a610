"""A WooCommerce that speaks REST API v3 (``/wp-json/wc/v3``) as the connector uses it.

As WooCommerce does: consumer key and secret as HTTP Basic or as query parameters (what it
accepts over HTTPS; the fake is plain HTTP on loopback), 401 ``woocommerce_rest_*`` bodies
otherwise; ``GET /products?sku=`` (comma-separated SKUs); ``POST /orders`` validates the
currency, the billing e-mail and each line's product id, books line ``subtotal``/``total``,
shipping and fee lines and recomputes the totals (no tax rates configured, so tax is 0),
and with ``set_paid`` reduces stock, going negative rather than refusing (it checks no
stock); ``GET /orders`` pages (``page``, ``per_page``, ``X-WP-Total[Pages]``) and filters
on ``after``. Faults hit ``POST /orders``; the 429 is a host limit (``Retry-After``).
"""

from __future__ import annotations

import base64
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from orderbridge.connectors.port import ConnectionSettings
from tests.connectors.fakes import FakeOrder, FakeState, json_response, read_json

CONSUMER_KEY = "ck_0123456789abcdef0123456789abcdef01234567"
CONSUMER_SECRET = "cs_76543210fedcba9876543210fedcba9876543210"
CURRENCIES = {"USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD"}
META_KEY = "_orderbridge_order_id"
CENT = Decimal("0.01")


def _error(code: str, message: str, status: int, **data: Any) -> web.Response:
    return json_response(
        {"code": code, "message": message, "data": {"status": status, **data}}, status=status
    )


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


class FakeWooCommerce(FakeState):
    platform = "woocommerce"

    def __init__(self) -> None:
        super().__init__()
        self.base_url = ""
        self.booked: list[dict[str, Any]] = []
        self.variations: dict[str, int] = {}  # SKU -> parent product id, for variations
        self.customers: list[dict[str, Any]] = []
        self.product_types: dict[str, str] = {}  # SKU -> type, for other than simple/variation

    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            platform="woocommerce",
            base_url=self.base_url,
            credentials={"consumer_key": CONSUMER_KEY, "consumer_secret": CONSUMER_SECRET},
        )

    def bad_credentials(self) -> ConnectionSettings:
        return ConnectionSettings(
            platform="woocommerce",
            base_url=self.base_url,
            credentials={"consumer_key": CONSUMER_KEY, "consumer_secret": "cs_wrong"},
        )

    @property
    def orders(self) -> list[FakeOrder]:
        return [_fake_order(order) for order in self.booked]

    @property
    def requests(self) -> list[Any]:
        return self.log

    # -- the API ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/wp-json/wc/v3/products", self.list_products)
        app.router.add_get("/wp-json/wc/v3/customers", self.list_customers)
        app.router.add_post("/wp-json/wc/v3/orders", self.create_order)
        app.router.add_get("/wp-json/wc/v3/orders", self.list_orders)
        return app

    @web.middleware
    async def _auth(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        key, secret = request.query.get("consumer_key"), request.query.get("consumer_secret")
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        if key is None:
            return _error("woocommerce_rest_cannot_view", "Sorry, you cannot list resources.", 401)
        if key != CONSUMER_KEY:
            return _error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        if secret != CONSUMER_SECRET:
            return _error(
                "woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401
            )
        return await handler(request)

    def _product_json(self, sku: str) -> dict[str, Any]:
        product = self.products[sku]
        return {
            "id": product.id,
            "name": sku.title(),
            "sku": sku,
            "type": "variation"
            if sku in self.variations
            else self.product_types.get(sku, "simple"),
            "parent_id": self.variations.get(sku, 0),
            "status": "publish",
            "price": _money(product.price),
            "manage_stock": True,
            "stock_quantity": product.stock,
            "stock_status": "instock" if product.stock > 0 else "outofstock",
            "backorders": "no",
        }

    async def list_products(self, request: web.Request) -> web.Response:
        skus = [sku for sku in request.query.get("sku", "").split(",") if sku]
        found = [self._product_json(sku) for sku in skus if sku in self.products]
        return json_response(found, headers={"X-WP-Total": str(len(found)), "X-WP-TotalPages": "1"})

    async def list_customers(self, request: web.Request) -> web.Response:
        email = request.query.get("email", "").lower()
        found = [c for c in self.customers if not email or c["email"].lower() == email]
        return json_response(found)

    async def create_order(self, request: web.Request) -> web.Response:
        fault = self.take_fault()
        if fault is not None and fault.kind == "rate_limited":
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            return web.Response(status=429, text="Too Many Requests", headers=headers)
        if fault is not None and fault.kind == "server_error":
            return _error(
                "internal_server_error", "There has been a critical error on this website.", 500
            )
        if fault is not None and fault.kind == "timeout_before_create":
            await self.stall()
            return _error("internal_server_error", "Timed out", 500)
        body = await read_json(request)
        if body.get("currency", "USD") not in CURRENCIES:
            return _error(
                "rest_invalid_param",
                "Invalid parameter(s): currency",
                400,
                params={"currency": "currency is not one of USD, EUR, ..."},
            )
        email = (body.get("billing") or {}).get("email", "")
        if email and "@" not in email:
            return _error(
                "rest_invalid_param",
                "Invalid parameter(s): billing",
                400,
                params={"billing": "billing[email] is not a valid email address."},
            )
        by_id = {product.id: product for product in self.products.values()}
        items: list[dict[str, Any]] = []
        for line in body.get("line_items", []):
            product = by_id.get(line.get("variation_id") or line.get("product_id"))
            parent = self.variations.get(product.sku) if product is not None else None
            if product is None or (parent is not None and line.get("product_id") != parent):
                return _error("woocommerce_rest_invalid_product_id", "Invalid product ID.", 400)
            quantity = int(line["quantity"])
            subtotal = Decimal(str(line.get("subtotal", product.price * quantity)))
            total = Decimal(str(line.get("total", subtotal)))
            items.append(
                {
                    "id": self.next_id(),
                    "product_id": parent or product.id,
                    "variation_id": product.id if parent else 0,
                    "sku": product.sku,
                    "quantity": quantity,
                    "subtotal": _money(subtotal),
                    "total": _money(total),
                    "price": subtotal / quantity,
                }
            )
        shipping = [
            {**line, "total": _money(Decimal(str(line["total"])))}
            for line in body.get("shipping_lines", [])
        ]
        fees = [
            {**fee, "total": _money(Decimal(str(fee["total"])))}
            for fee in body.get("fee_lines", [])
        ]
        shipping_total = sum((Decimal(line["total"]) for line in shipping), Decimal(0))
        discount = sum((Decimal(i["subtotal"]) - Decimal(i["total"]) for i in items), Decimal(0))
        total = (
            sum((Decimal(i["total"]) for i in items), Decimal(0))
            + shipping_total
            + sum((Decimal(fee["total"]) for fee in fees), Decimal(0))
        )
        order_id = self.next_id()
        order = {
            "id": order_id,
            "number": str(order_id),
            "order_key": f"wc_order_{order_id:x}",
            "created_via": "rest-api",
            "status": body.get("status", "pending"),
            "currency": body.get("currency", "USD"),
            "date_created_gmt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "discount_total": _money(discount),
            "shipping_total": _money(shipping_total),
            "total_tax": "0.00",
            "total": _money(total),
            "customer_id": body.get("customer_id", 0),
            "customer_note": body.get("customer_note", ""),
            "billing": body.get("billing", {}),
            "shipping": body.get("shipping", {}),
            "payment_method": body.get("payment_method", ""),
            "transaction_id": body.get("transaction_id", ""),
            "line_items": items,
            "shipping_lines": shipping,
            "fee_lines": fees,
            "meta_data": [{"id": self.next_id(), **meta} for meta in body.get("meta_data", [])],
        }
        if body.get("set_paid"):
            for item in items:
                self.products[item["sku"]].stock -= item["quantity"]
        self.booked.append(order)
        if fault is not None:  # timeout_after_create
            await self.stall()
        return json_response(order, status=201)

    async def list_orders(self, request: web.Request) -> web.Response:
        after = request.query.get("after")
        found = [o for o in reversed(self.booked) if not after or o["date_created_gmt"] > after]
        per_page = int(request.query.get("per_page", "10"))
        page = int(request.query.get("page", "1"))
        chunk = found[(page - 1) * per_page : page * per_page]
        headers = {
            "X-WP-Total": str(len(found)),
            "X-WP-TotalPages": str(max(1, math.ceil(len(found) / per_page))),
        }
        return json_response(chunk, headers=headers)


def _fake_order(order: dict[str, Any]) -> FakeOrder:
    external = next((m["value"] for m in order["meta_data"] if m["key"] == META_KEY), None)
    return FakeOrder(
        id=str(order["id"]),
        number=order["number"],
        external_ref=external,
        skus=[(item["sku"], item["quantity"]) for item in order["line_items"]],
        currency=order["currency"],
        total=Decimal(order["total"]),
        email=order["billing"].get("email", ""),
        shipping=Decimal(order["shipping_total"]),
        # WooCommerce's own tax is 0 here; ours is booked as a fee line (test_woocommerce).
        tax=None,
        discount=Decimal(order["discount_total"]),
        unit_prices={item["sku"]: item["price"] for item in order["line_items"]},
    )


@asynccontextmanager
async def start() -> AsyncIterator[FakeWooCommerce]:
    fake = FakeWooCommerce()
    async with fake.serve(fake.app()) as url:
        fake.base_url = url
        yield fake
