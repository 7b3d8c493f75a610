"""A merchant's custom endpoint, as docs/plug-and-play.md tells integrators to build one.

It verifies every request's Standard Webhooks signature with the independent
``standardwebhooks`` library (not our signer), answers 401 when it does not verify,
deduplicates creates by ``webhook-id``, checks SKUs, stock and the shipping address, and
answers refusals as ``{"code", "detail", "skus"}`` with 409/422; ``GET ?order_id=`` finds
an order (404 with a JSON body when there is none). Faults (tests.connectors.fakes) hit the
next POST.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from orderbridge.connectors.port import ConnectionSettings
from orderbridge.outbound.signing import generate_secret
from tests.connectors.fakes import FakeOrder, FakeState, Fault, RecordedRequest, json_response

PATH = "/orderbridge/orders"


class CustomEndpointFake:
    platform = "custom"

    def __init__(self) -> None:
        self.state = FakeState()
        self.secret = generate_secret()
        self.base_url = ""
        self.by_message: dict[str, FakeOrder] = {}
        self.bodies: list[dict[str, Any]] = []  # every order body accepted
        # Run (once) when the next create arrives, before it is answered.
        self.on_next_create: Callable[[], Awaitable[None]] | None = None

    # ---- PlatformFake -----------------------------------------------------------------------

    def settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            platform="custom", base_url=self.base_url, credentials={"signing_secret": self.secret}
        )

    def bad_credentials(self) -> ConnectionSettings:
        return ConnectionSettings(
            platform="custom",
            base_url=self.base_url,
            credentials={"signing_secret": generate_secret()},
        )

    def add_product(self, sku: str, *, stock: int, price: Decimal) -> None:
        self.state.add_product(sku, stock=stock, price=price)

    def fail_next(self, fault: Fault) -> None:
        self.state.fail_next(fault)

    @property
    def orders(self) -> list[FakeOrder]:
        return list(self.state.held_orders)

    @property
    def requests(self) -> list[RecordedRequest]:
        return list(self.state.log)

    # ---- the endpoint -----------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(PATH, self.create)
        app.router.add_get(PATH, self.find)
        return app

    def _verified(self, request: web.Request, body: bytes) -> bool:
        try:
            Webhook(self.secret).verify(body, dict(request.headers), json_parse=False)
        except WebhookVerificationError:
            return False
        return True

    async def create(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if not self._verified(request, body):
            return json_response({"code": "auth_failed", "detail": "bad signature"}, status=401)
        if self.on_next_create is not None:
            hook, self.on_next_create = self.on_next_create, None
            await hook()
        message_id = request.headers["webhook-id"]
        if message_id in self.by_message:  # a retry of a delivered push: same answer
            held = self.by_message[message_id]
            return json_response({"order_id": held.id, "order_number": held.number})
        fault = self.state.take_fault()
        if fault is not None and fault.kind == "rate_limited":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after else {}
            return json_response({"code": "rate_limited"}, status=429, headers=headers)
        if fault is not None and fault.kind == "server_error":
            return json_response({"code": "unavailable"}, status=503)
        if fault is not None and fault.kind == "timeout_before_create":
            await self.state.stall()
            return json_response({"code": "too_late"}, status=504)
        order = json.loads(body, parse_float=Decimal)
        refusal = self._refusal(order)
        if refusal is not None:
            return refusal
        for item in order["items"]:
            self.state.products[item["sku"]].stock -= item["quantity"]
        number = self.state.next_id()
        held = FakeOrder(
            id=f"ord_{number}",
            number=f"#{number}",
            external_ref=order["order_id"],
            skus=[(item["sku"], item["quantity"]) for item in order["items"]],
            currency=order["currency"],
            total=Decimal(order["totals"]["total"]),
            email=order["customer"]["email"],
            shipping=Decimal(order["totals"]["shipping"]),
            tax=Decimal(order["totals"]["tax"]),
            discount=Decimal(order["totals"]["discount"]),
            unit_prices={item["sku"]: Decimal(item["unit_price"]) for item in order["items"]},
        )
        self.state.held_orders.append(held)
        self.by_message[message_id] = held
        self.bodies.append(order)
        if fault is not None and fault.kind == "timeout_after_create":
            await self.state.stall()
        return json_response({"order_id": held.id, "order_number": held.number}, status=201)

    def _refusal(self, order: dict[str, Any]) -> web.Response | None:
        unknown = [i["sku"] for i in order["items"] if i["sku"] not in self.state.products]
        if unknown:
            return _refuse(422, "product_not_found", "unknown SKU", unknown)
        short = [
            i["sku"] for i in order["items"] if self.state.products[i["sku"]].stock < i["quantity"]
        ]
        if short:
            return _refuse(409, "out_of_stock", "not enough stock", short)
        address = order["shipping_address"]
        if not address["line1"] or not address["city"]:
            return _refuse(422, "invalid_address", "the shipping address needs a street and city")
        return None

    async def find(self, request: web.Request) -> web.StreamResponse:
        if not self._verified(request, b""):
            return json_response({"code": "auth_failed", "detail": "bad signature"}, status=401)
        wanted = request.query.get("order_id")
        for held in self.state.held_orders:
            if held.external_ref == wanted:
                return json_response({"order_id": held.id, "order_number": held.number})
        return json_response({"code": "not_found"}, status=404)


def _refuse(status: int, code: str, detail: str, skus: list[str] | None = None) -> web.Response:
    return json_response({"code": code, "detail": detail, "skus": skus or []}, status=status)


@asynccontextmanager
async def start() -> AsyncIterator[CustomEndpointFake]:
    fake = CustomEndpointFake()
    async with fake.state.serve(fake.app()) as root:
        fake.base_url = root + PATH
        yield fake
