"""What a platform fake is, and the plumbing every fake shares.

A fake is a small aiohttp server on loopback that speaks one platform's documented API
(paths, auth header, request and error bodies, rate-limit signals) and enforces what the
platform enforces (credentials, known SKUs, stock, required fields). The contract suite
(test_contract.py) drives each connector against its fake and then asks the fake what the
"platform" now holds (``orders``) and what it was sent (``requests``).

Faults are queued with ``fail_next`` and hit the next *order-creating* request only, so
the lookups a connector makes before creating (SKU -> variant...) are not disturbed:

- ``rate_limited``           the platform's 429 / throttle answer, with ``retry_after``
                             expressed the platform's way (header, throttle status...)
- ``server_error``           a 5xx
- ``timeout_before_create``  stall (longer than the connector's timeout), create nothing
- ``timeout_after_create``   create the order, then stall: the retry must find it
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

from aiohttp import web

from orderbridge.connectors.port import ConnectionSettings

FaultKind = Literal["rate_limited", "server_error", "timeout_after_create", "timeout_before_create"]

# Longer than any connector timeout the tests use (0.5 s); released early when the fake stops.
STALL_SECONDS = 10.0


@dataclass
class Fault:
    kind: FaultKind
    retry_after: float | None = None  # seconds, for rate_limited


@dataclass
class FakeOrder:
    id: str
    number: str
    external_ref: str | None  # our order id as tagged on the platform
    skus: list[tuple[str, int]]
    currency: str
    total: Decimal
    email: str
    # What else the platform booked, when the fake can tell (None: the platform has no
    # such figure); the contract compares each given one with the PushOrder.
    shipping: Decimal | None = None
    tax: Decimal | None = None
    discount: Decimal | None = None
    unit_prices: dict[str, Decimal] = field(default_factory=dict)  # by SKU, before discount


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    json: Any = None  # the decoded body when it was JSON


@dataclass
class Product:
    sku: str
    stock: int
    price: Decimal
    id: int


class PlatformFake(Protocol):
    """Optionally also ``currencies: frozenset[str]``: the only currencies the platform's
    API can book an order in (BigCommerce V2: the store's); the contract then expects
    ``CURRENCY_UNSUPPORTED`` for any other. Without it, any currency must book."""

    platform: str
    base_url: str

    def settings(self) -> ConnectionSettings: ...
    def bad_credentials(self) -> ConnectionSettings: ...
    def add_product(self, sku: str, *, stock: int, price: Decimal) -> None: ...
    def fail_next(self, fault: Fault) -> None: ...
    @property
    def orders(self) -> list[FakeOrder]: ...
    @property
    def requests(self) -> list[RecordedRequest]: ...


class FakeState:
    """The bookkeeping every fake needs: catalog, orders, request log, queued faults, and
    the stall that outlives the connector's timeout. A fake holds one (or subclasses it)."""

    def __init__(self) -> None:
        self.products: dict[str, Product] = {}
        self.held_orders: list[FakeOrder] = []
        self.log: list[RecordedRequest] = []
        self.faults: deque[Fault] = deque()
        self._closing = asyncio.Event()
        self._next_id = 1000

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_product(self, sku: str, *, stock: int, price: Decimal) -> None:
        self.products[sku] = Product(sku=sku, stock=stock, price=price, id=self.next_id())

    def fail_next(self, fault: Fault) -> None:
        self.faults.append(fault)

    def take_fault(self) -> Fault | None:
        """The queued fault for this order-creating request, if any."""
        return self.faults.popleft() if self.faults else None

    async def stall(self) -> None:
        """Hold the response past the connector's timeout (or until the fake stops)."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), STALL_SECONDS)

    @asynccontextmanager
    async def serve(self, app: web.Application) -> AsyncIterator[str]:
        """Run ``app`` on 127.0.0.1 (a free port) in the running loop, every request
        recorded; yields ``http://127.0.0.1:PORT``."""
        app.middlewares.insert(0, self._record)
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            self._closing.set()
            await runner.cleanup()

    @web.middleware
    async def _record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        body = await request.read()
        decoded: Any = None
        if body and "json" in request.headers.get("Content-Type", ""):
            try:
                decoded = json.loads(body, parse_float=Decimal)
            except ValueError:
                decoded = None
        self.log.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=body,
                json=decoded,
            )
        )
        return await handler(request)


def json_response(
    payload: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer; Decimals go out as strings, as both Shopify and BigCommerce write
    amounts."""
    return web.Response(
        text=dumps(payload), status=status, headers=headers, content_type="application/json"
    )


def dumps(payload: Any) -> str:
    return json.dumps(payload, default=_number)


def _number(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


async def read_json(request: web.Request) -> Any:
    """The request body as JSON with Decimal numbers (amounts stay exact)."""
    return json.loads(await request.read(), parse_float=Decimal)
