"""A PrestaShop that speaks the webservice (``/api``) as the connector uses it.

As PrestaShop does: the key as the Basic user (401 and ``WWW-Authenticate`` otherwise);
``output_format=JSON`` answers, ``[]`` for an empty list; XML bodies for writes;
``filter[field]=[a|b]`` and ``display=[f1,f2]`` on lists; required fields checked per
resource (``{"errors": [{"code", "message"}]}``, 400); ``POST /api/orders`` runs a
``validateOrder``: the cart must exist and not be ordered yet (500 otherwise), lines are
priced from cart-scoped specific prices (else the catalogue, converted), tax is the shop's
20 % rule on products and shipping, shipping is the carrier's 8.00 in the default currency;
a ``total_paid`` that differs from that total gives the "Payment error" state (8), as
PrestaShop does; stock is decremented, never refused (backorders); the gift message is
copied from the cart; the answer echoes the posted fields with the new id (no reference).
``PUT /api/orders/{id}`` overwrites the order's fields. Faults hit ``POST /api/orders``.
"""

from __future__ import annotations

import base64
import secrets
import string
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web

from orderbridge.connectors.port import ConnectionSettings
from tests.connectors.fakes import FakeOrder, FakeState, json_response

API_KEY = "UCCLLQ9N2ARSHWCXLT74KUKSSK34BFKX"
CENT = Decimal("0.01")
TAX_RATE = Decimal("0.20")
CARRIER_PRICE = Decimal("8.00")  # in the default currency, tax excluded
WS_PAYMENT_STATE, PAYMENT_ERROR_STATE = "11", "8"

REQUIRED = {
    "customers": ("lastname", "firstname", "email", "passwd"),
    "addresses": ("id_country", "alias", "lastname", "firstname", "address1", "city"),
    "carts": ("id_currency", "id_lang"),
    "specific_prices": (
        "id_shop", "id_cart", "id_product", "id_currency", "id_country", "id_group",
        "id_customer", "price", "from_quantity", "reduction", "reduction_tax",
        "reduction_type", "from", "to",
    ),
    "orders": (
        "id_address_delivery", "id_address_invoice", "id_cart", "id_currency", "id_lang",
        "id_customer", "id_carrier", "module", "payment", "total_paid", "total_paid_real",
        "total_products", "total_products_wt", "conversion_rate",
    ),
    "order_histories": ("id_order", "id_order_state"),
}  # fmt: skip
SINGULAR = {
    "customers": "customer",
    "addresses": "address",
    "carts": "cart",
    "specific_prices": "specific_price",
    "orders": "order",
    "order_histories": "order_history",
}


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _errors(status: int, *messages: tuple[int, str]) -> web.Response:
    body = {"errors": [{"code": code, "message": message} for code, message in messages]}
    return json_response(body, status=status)


class FakePrestaShop(FakeState):
    platform = "prestashop"

    def __init__(self) -> None:
        super().__init__()
        self.base_url = ""
        self.tables: dict[str, list[dict[str, Any]]] = {
            "currencies": [
                {"id": 1, "iso_code": "USD", "conversion_rate": "1.000000"},
                {"id": 2, "iso_code": "EUR", "conversion_rate": "0.920000"},
            ],
            "languages": [{"id": 1, "iso_code": "en"}, {"id": 2, "iso_code": "fr"}],
            "countries": [
                {"id": 1, "iso_code": "DE"},
                {"id": 8, "iso_code": "FR"},
                {"id": 21, "iso_code": "US"},
            ],
            "carriers": [{"id": 7, "name": "La Poste", "active": "1", "deleted": "0"}],
            "products": [],
            "combinations": [],
            "stock_availables": [],
            "customers": [],
            "addresses": [],
            "carts": [],
            "specific_prices": [],
            "orders": [],
            "order_histories": [],
        }
        # resources whose single-object GET answers 404 (a read replica behind, say)
        self.unreadable: set[str] = set()

    # -- PlatformFake --------------------------------------------------------------------------

    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            platform="prestashop", base_url=self.base_url, credentials={"api_key": API_KEY}
        )

    def bad_credentials(self) -> ConnectionSettings:
        return ConnectionSettings(
            platform="prestashop", base_url=self.base_url, credentials={"api_key": "WRONGKEY"}
        )

    def add_product(self, sku: str, *, stock: int, price: Decimal) -> None:
        super().add_product(sku, stock=stock, price=price)
        product = self.products[sku]
        self.tables["products"].append(
            {"id": product.id, "reference": sku, "price": f"{price:.6f}", "active": "1"}
        )
        self.tables["stock_availables"].append(
            {
                "id": self.next_id(),
                "id_product": product.id,
                "id_product_attribute": 0,
                "quantity": stock,
                "out_of_stock": 2,
            }
        )

    def add_combination(self, sku: str, *, of: str, stock: int) -> None:
        """A combination (size, colour...) of the product with reference ``of``, with its
        own reference and stock."""
        combination = {"id": self.next_id(), "id_product": self.products[of].id, "reference": sku}
        self.tables["combinations"].append(combination)
        self.tables["stock_availables"].append(
            {
                "id": self.next_id(),
                "id_product": combination["id_product"],
                "id_product_attribute": combination["id"],
                "quantity": stock,
                "out_of_stock": 2,
            }
        )

    @property
    def orders(self) -> list[FakeOrder]:
        return [self._fake_order(order) for order in self.tables["orders"]]

    @property
    def requests(self) -> list[Any]:
        return self.log

    # -- the webservice ------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/api/{resource}", self.list_resource)
        app.router.add_get("/api/{resource}/{id}", self.get_one)
        app.router.add_post("/api/{resource}", self.create)
        app.router.add_put("/api/orders/{id}", self.update_order)
        return app

    @web.middleware
    async def _auth(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        key = request.query.get("ws_key")
        if header.startswith("Basic "):
            key = base64.b64decode(header[6:]).decode().partition(":")[0]
        if key != API_KEY:
            response = _errors(
                401,
                (17, "Authentication key is empty")
                if not key
                else (18, "Invalid authentication key"),
            )
            response.headers["WWW-Authenticate"] = (
                'Basic realm="Welcome to PrestaShop Webservice, please enter the '
                'authentication key as the login. No password required."'
            )
            return response
        return await handler(request)

    async def list_resource(self, request: web.Request) -> web.Response:
        resource = request.match_info["resource"]
        if resource not in self.tables:
            return _errors(400, (22, f'Resource of type "{resource}" does not exists.'))
        rows = self.tables[resource]
        for key, value in request.query.items():
            if key.startswith("filter[") and key.endswith("]"):
                field = key[7:-1]
                allowed = {v.lower() for v in value.strip("[]").split("|")}
                rows = [row for row in rows if str(row.get(field, "")).lower() in allowed]
        limit = request.query.get("limit")
        if limit:
            rows = rows[: int(limit.split(",")[-1])]
        display = request.query.get("display", "")
        if display.startswith("["):
            fields = display.strip("[]").split(",")
            rows = [{field: row.get(field) for field in fields} for row in rows]
        elif display != "full":
            rows = [{"id": row["id"]} for row in rows]
        if not rows:
            return json_response([])
        return json_response({resource: rows})

    async def get_one(self, request: web.Request) -> web.Response:
        resource = request.match_info["resource"]
        if resource in self.unreadable:
            return _errors(404, (87, "Id(s) not exists"))
        for row in self.tables.get(resource, []):
            if str(row["id"]) == request.match_info["id"]:
                return json_response({SINGULAR.get(resource, resource): row})
        return _errors(404, (87, "Id(s) not exists"))

    async def create(self, request: web.Request) -> web.Response:
        resource = request.match_info["resource"]
        if resource not in REQUIRED:
            return _errors(405, (23, f"Method POST is not allowed for {resource}"))
        fault = self.take_fault() if resource == "orders" else None
        if fault is not None and fault.kind == "rate_limited":
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            return web.Response(status=429, text="Too Many Requests", headers=headers)
        if fault is not None and fault.kind == "server_error":
            return web.Response(status=503, text="Service Unavailable")
        if fault is not None and fault.kind == "timeout_before_create":
            await self.stall()
            return web.Response(status=504, text="Gateway Timeout")
        try:
            fields, rows = _parse(await request.read(), SINGULAR[resource])
        except (ET.ParseError, LookupError):
            return _errors(400, (127, "XML error"))
        class_name = SINGULAR[resource].replace("_", " ").title().replace(" ", "")
        for name in REQUIRED[resource]:
            if fields.get(name, "") == "":
                return _errors(
                    400, (41, f'Validation error: "Property {class_name}->{name} is empty."')
                )
        fields["id"] = self.next_id()
        if resource == "customers":
            fields["secure_key"] = secrets.token_hex(16)
        if resource == "carts":
            fields["cart_rows"] = rows
        if resource == "orders":
            failed = self._validate_order(fields)
            if failed is not None:
                return failed
        elif resource == "order_histories":  # a new state becomes the order's current one
            for order in self.tables["orders"]:
                if str(order["id"]) == fields["id_order"]:
                    order["current_state"] = fields["id_order_state"]
            self.tables[resource].append(fields)
        else:
            self.tables[resource].append(fields)
        if fault is not None:  # timeout_after_create
            await self.stall()
        return json_response({SINGULAR[resource]: fields}, status=201)

    def _validate_order(self, posted: dict[str, Any]) -> web.Response | None:
        cart = next((c for c in self.tables["carts"] if str(c["id"]) == posted["id_cart"]), None)
        ordered = any(o["id_cart"] == posted["id_cart"] for o in self.tables["orders"])
        if cart is None or ordered:
            return _errors(
                500,
                (1, "Cart cannot be loaded or an order has already been placed using this cart"),
            )
        currency = next(c for c in self.tables["currencies"] if str(c["id"]) == cart["id_currency"])
        rate = Decimal(currency["conversion_rate"])
        rows, products = [], Decimal(0)
        for row in cart["cart_rows"]:
            product = next(p for p in self.tables["products"] if str(p["id"]) == row["id_product"])
            attribute = row.get("id_product_attribute", "0")
            reference = product["reference"]
            if attribute != "0":
                reference = next(
                    c["reference"] for c in self.tables["combinations"] if str(c["id"]) == attribute
                )
            special = next(
                (
                    s
                    for s in self.tables["specific_prices"]
                    if s["id_cart"] == str(cart["id"])
                    and (s["id_product"], s.get("id_product_attribute", "0"))
                    == (row["id_product"], attribute)
                ),
                None,
            )
            price = (
                Decimal(special["price"]) if special else cents(Decimal(product["price"]) * rate)
            )
            quantity = int(row["quantity"])
            products += price * quantity
            rows.append(
                {"product_reference": reference, "product_quantity": quantity,
                 "unit_price_tax_excl": str(price)}
            )  # fmt: skip
            stock = next(
                s
                for s in self.tables["stock_availables"]
                if (str(s["id_product"]), str(s["id_product_attribute"]))
                == (row["id_product"], attribute)
            )
            stock["quantity"] -= quantity
        shipping = cents(CARRIER_PRICE * rate)
        total = cents((products + shipping) * (1 + TAX_RATE))
        paid = Decimal(posted["total_paid"])
        order = {
            **posted,
            "reference": "".join(secrets.choice(string.ascii_uppercase) for _ in range(9)),
            "current_state": WS_PAYMENT_STATE if paid == total else PAYMENT_ERROR_STATE,
            "valid": "1" if paid == total else "0",
            "gift_message": cart.get("gift_message", ""),
            "total_paid": str(total),
            "total_paid_tax_incl": str(total),
            "total_paid_tax_excl": str(products + shipping),
            "total_paid_real": str(paid),
            "total_products": str(products),
            "total_shipping_tax_excl": str(shipping),
            "total_discounts_tax_excl": "0.00",
            "associations": {"order_rows": rows},
        }
        self.tables["orders"].append(order)
        return None

    async def update_order(self, request: web.Request) -> web.Response:
        order = next(
            (o for o in self.tables["orders"] if str(o["id"]) == request.match_info["id"]), None
        )
        if order is None:
            return _errors(404, (87, "Id(s) not exists"))
        fields, _ = _parse(await request.read(), "order")
        if fields.get("id") != str(order["id"]):
            return _errors(400, (90, "id is required when modifying a resource"))
        order.update({key: value for key, value in fields.items() if key != "id"})
        return json_response({"order": order})

    def _fake_order(self, order: dict[str, Any]) -> FakeOrder:
        currency = next(
            c for c in self.tables["currencies"] if str(c["id"]) == order["id_currency"]
        )
        customer = next(c for c in self.tables["customers"] if str(c["id"]) == order["id_customer"])
        tag = str(order.get("gift_message", ""))
        rows = order["associations"]["order_rows"]
        return FakeOrder(
            id=str(order["id"]),
            number=order["reference"],
            external_ref=tag.removeprefix("orderbridge:")
            if tag.startswith("orderbridge:")
            else None,
            skus=[(row["product_reference"], row["product_quantity"]) for row in rows],
            currency=currency["iso_code"],
            total=Decimal(order["total_paid"]),
            email=customer["email"],
            shipping=Decimal(order["total_shipping_tax_excl"]),
            tax=Decimal(order["total_paid_tax_incl"]) - Decimal(order["total_paid_tax_excl"]),
            discount=Decimal(order["total_discounts_tax_excl"]),
            unit_prices={
                row["product_reference"]: Decimal(row["unit_price_tax_excl"]) for row in rows
            },
        )


def _parse(body: bytes, singular: str) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The object's fields (as text) and its cart rows, from ``<prestashop><singular>``."""
    node = ET.fromstring(body).find(singular)
    if node is None:
        raise LookupError(singular)
    fields = {child.tag: child.text or "" for child in node if child.tag != "associations"}
    rows = [
        {child.tag: child.text or "" for child in row}
        for row in node.findall("./associations/cart_rows/cart_row")
    ]
    return fields, rows


@asynccontextmanager
async def start() -> AsyncIterator[FakePrestaShop]:
    fake = FakePrestaShop()
    async with fake.serve(fake.app()) as url:
        fake.base_url = url
        yield fake
