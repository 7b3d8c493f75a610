"""A Magento 2 that speaks the admin REST API the connector uses (``/rest/{store}/V1``).

What it enforces, as Magento does: a Bearer token on every call (an integration token, or
one issued by ``POST /V1/integration/admin/token`` for the admin user), 401 with Magento's
``{"message", "parameters"}`` body otherwise; ``searchCriteria`` filters (``eq`` / ``in``)
on products and orders; 404 for an unknown SKU's stock item; the order address
validator's required fields on ``POST /V1/orders``. Like Magento, the order save itself
checks neither SKUs nor stock and deducts nothing: that is the connector's job, through
``stockItems``. Faults hit ``POST /V1/orders``; the 429 is a host or WAF limit
(``Retry-After``), Magento has none of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from aiohttp import web

from orderbridge.connectors.port import ConnectionSettings
from tests.connectors.fakes import FakeOrder, FakeState, Fault, json_response, read_json

ADMIN_USER, ADMIN_PASSWORD = "orderbridge", "s3cret-Passw0rd"
INTEGRATION_TOKEN = "integration-token-0123456789abcdef"
REQUIRED_ADDRESS_FIELDS = ("firstname", "lastname", "street", "city", "country_id", "telephone")


def _error(message: str, status: int, parameters: Any = None) -> web.Response:
    body: dict[str, Any] = {"message": message}
    if parameters is not None:
        body["parameters"] = parameters
    return json_response(body, status=status)


def _unauthorized(resource: str) -> web.Response:
    return _error(
        "The consumer isn't authorized to access %resources.", 401, {"resources": resource}
    )


class FakeMagento(FakeState):
    platform = "magento"

    def __init__(self) -> None:
        super().__init__()
        self.base_url = ""
        self.tokens = {INTEGRATION_TOKEN}
        self.entities: list[dict[str, Any]] = []
        self.stock_items: dict[str, dict[str, Any]] = {}
        self.customers: list[dict[str, Any]] = []
        self.product_types: dict[str, str] = {}  # SKU -> type_id, "simple" when not here
        self.two_factor = False  # Magento_TwoFactorAuth on: admin tokens only through 2FA

    # -- PlatformFake ------------------------------------------------------------------------

    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            platform="magento",
            base_url=self.base_url,
            credentials={"username": ADMIN_USER, "password": ADMIN_PASSWORD},
        )

    def bad_credentials(self) -> ConnectionSettings:
        return ConnectionSettings(
            platform="magento",
            base_url=self.base_url,
            credentials={"username": ADMIN_USER, "password": "wrong"},
        )

    def add_product(self, sku: str, *, stock: int, price: Decimal) -> None:
        super().add_product(sku, stock=stock, price=price)
        product = self.products[sku]
        self.stock_items[sku] = {
            "item_id": product.id,
            "product_id": product.id,
            "stock_id": 1,
            "qty": stock,
            "is_in_stock": stock > 0,
            "manage_stock": True,
            "backorders": 0,
        }

    @property
    def orders(self) -> list[FakeOrder]:
        return [_fake_order(entity) for entity in self.entities]

    @property
    def requests(self) -> list[Any]:
        return self.log

    # -- the API -------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        prefix = "/rest/{store}/V1"
        app.router.add_post(f"{prefix}/integration/admin/token", self.admin_token)
        app.router.add_get(f"{prefix}/products", self.search_products)
        app.router.add_get(f"{prefix}/customers/search", self.search_customers)
        app.router.add_get(f"{prefix}/stockItems/{{sku}}", self.get_stock_item)
        app.router.add_put(f"{prefix}/products/{{sku}}/stockItems/{{item_id}}", self.put_stock_item)
        app.router.add_post(f"{prefix}/orders", self.create_order)
        app.router.add_get(f"{prefix}/orders", self.search_orders)
        app.router.add_get(f"{prefix}/orders/{{id}}", self.get_order)
        return app

    @web.middleware
    async def _auth(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if request.path.endswith("/integration/admin/token"):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header.removeprefix("Bearer ") not in self.tokens:
            return _unauthorized("Magento_Sales::actions_view")
        return await handler(request)

    async def admin_token(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if self.two_factor:
            return _error(
                "Please use the 2fa provider-specific endpoints to obtain access token.", 401
            )
        if body.get("username") != ADMIN_USER or body.get("password") != ADMIN_PASSWORD:
            return _error(
                "The account sign-in was incorrect or your account is disabled temporarily. "
                "Please wait and try again later.",
                401,
            )
        token = secrets.token_hex(16)
        self.tokens.add(token)
        return json_response(token)

    async def search_products(self, request: web.Request) -> web.Response:
        field, value, condition = _filter(request)
        if field != "sku":
            return json_response({"items": [], "total_count": 0})
        wanted = value.split(",") if condition == "in" else [value]
        items = [
            {
                "id": p.id,
                "sku": p.sku,
                "name": p.sku.title(),
                "type_id": self.product_types.get(sku, "simple"),
                "price": p.price,
            }
            for sku in wanted
            if (p := self.products.get(sku)) is not None
        ]
        return json_response({"items": items, "search_criteria": {}, "total_count": len(items)})

    async def search_customers(self, request: web.Request) -> web.Response:
        field, value, _ = _filter(request)
        found = [c for c in self.customers if str(c.get(field, "")).lower() == value.lower()]
        return json_response({"items": found, "search_criteria": {}, "total_count": len(found)})

    async def get_stock_item(self, request: web.Request) -> web.Response:
        sku = request.match_info["sku"]
        if sku not in self.stock_items:
            return _error('The Product with the "%1" SKU doesn\'t exist.', 404, [sku])
        return json_response(self.stock_items[sku])

    async def put_stock_item(self, request: web.Request) -> web.Response:
        sku = request.match_info["sku"]
        item = self.stock_items.get(sku)
        if item is None:
            return _error('The Product with the "%1" SKU doesn\'t exist.', 404, [sku])
        update = (await read_json(request))["stockItem"]
        item["qty"] = Decimal(str(update["qty"]))
        item["is_in_stock"] = bool(update.get("is_in_stock", item["qty"] > 0))
        self.products[sku].stock = int(item["qty"])
        return json_response(item["item_id"])

    async def create_order(self, request: web.Request) -> web.Response:
        fault = self.take_fault()
        if fault is not None and fault.kind != "timeout_after_create":
            return await _answer_fault(self, fault)
        entity = (await read_json(request)).get("entity")
        if not isinstance(entity, dict):
            return _error(
                '"%fieldName" is required. Enter and try again.', 400, {"fieldName": "entity"}
            )
        addresses = [entity.get("billing_address") or {}] + [
            assignment["shipping"]["address"]
            for assignment in entity.get("extension_attributes", {}).get("shipping_assignments", [])
        ]
        for address in addresses:
            for name in REQUIRED_ADDRESS_FIELDS:
                value = address.get(name)
                if not value or (name == "street" and not str(value[0]).strip()):
                    return _error(
                        '"%fieldName" is required. Enter and try again.', 400, {"fieldName": name}
                    )
        entity_id = self.next_id()
        stored = {
            **entity,
            "entity_id": entity_id,
            "increment_id": entity.get("increment_id") or f"{entity_id:09d}",
        }
        self.entities.append(stored)
        if fault is not None:
            await self.stall()
        return json_response(stored)

    async def search_orders(self, request: web.Request) -> web.Response:
        field, value, _ = _filter(request)
        found = [e for e in self.entities if not field or str(e.get(field)) == value]
        size = int(request.query.get("searchCriteria[pageSize]", "20"))
        return json_response(
            {"items": found[:size], "search_criteria": {}, "total_count": len(found)}
        )

    async def get_order(self, request: web.Request) -> web.Response:
        for entity in self.entities:
            if str(entity["entity_id"]) == request.match_info["id"]:
                return json_response(entity)
        return _error(
            "The entity that was requested doesn't exist. Verify the entity and try again.", 404
        )


async def _answer_fault(fake: FakeState, fault: Fault) -> web.Response:
    if fault.kind == "rate_limited":
        return (
            _error("Too Many Requests", 429)
            if fault.retry_after is None
            else web.Response(
                status=429,
                text='{"message": "Too Many Requests"}',
                content_type="application/json",
                headers={"Retry-After": f"{fault.retry_after:g}"},
            )
        )
    if fault.kind == "server_error":
        return web.Response(
            status=503, text="<html>Service Unavailable</html>", content_type="text/html"
        )
    await fake.stall()  # timeout_before_create
    return _error("Internal Error. Details are available in Magento log file.", 500)


def _filter(request: web.Request) -> tuple[str, str, str]:
    prefix = "searchCriteria[filter_groups][0][filters][0]"
    return (
        request.query.get(f"{prefix}[field]", ""),
        request.query.get(f"{prefix}[value]", ""),
        request.query.get(f"{prefix}[condition_type]", "eq"),
    )


def _fake_order(entity: dict[str, Any]) -> FakeOrder:
    return FakeOrder(
        id=str(entity["entity_id"]),
        number=str(entity["increment_id"]),
        external_ref=entity.get("ext_order_id"),
        skus=[(item["sku"], int(item["qty_ordered"])) for item in entity.get("items", [])],
        currency=entity.get("order_currency_code", ""),
        total=Decimal(str(entity.get("grand_total", "0"))),
        email=entity.get("customer_email", ""),
        shipping=Decimal(str(entity["shipping_amount"])) if "shipping_amount" in entity else None,
        tax=Decimal(str(entity["tax_amount"])) if "tax_amount" in entity else None,
        discount=-Decimal(str(entity["discount_amount"])) if "discount_amount" in entity else None,
        unit_prices={item["sku"]: Decimal(str(item["price"])) for item in entity.get("items", [])},
    )


@asynccontextmanager
async def start() -> AsyncIterator[FakeMagento]:
    fake = FakeMagento()
    async with fake.serve(fake.app()) as url:
        fake.base_url = url
        yield fake
