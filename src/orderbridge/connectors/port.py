"""The connector port: what plug & play asks of a merchant's e-commerce platform.

For a store with a plug & play connection, orderbridge pushes every ``READY`` order into
the merchant's platform (Vendure, Shopify, BigCommerce, Magento 2, WooCommerce,
PrestaShop, or the merchant's own endpoint), reads back the platform's order id and number,
and accepts the order with them. A connector is the one module that knows a platform's API:

- ``create_order``     insert the order, return the platform's id and number
- ``find_order``       the platform order created earlier for one of our order ids, if any
- ``test_connection``  can we reach and authenticate against the platform?

Contract every connector keeps (``tests/connectors/test_contract.py`` checks it, each platform
against a local server that speaks its documented API; Vendure also against the real
thing):

- **No duplicates.** Every platform order is tagged with our order id in the platform's
  external-reference field (Shopify ``sourceIdentifier``, BigCommerce ``external_id``,
  WooCommerce ``meta_data``, a Vendure custom field...). The push job calls ``find_order``
  before every retry, so a push that timed out *after* the platform created the order is
  found, not repeated. A connector whose platform cannot be searched by that tag before
  the order is complete must make ``create_order`` itself safe to repeat.
- **Two kinds of error only.** ``PushRetryable`` (network errors, timeouts, 5xx, 429 and
  throttling, with the platform's wait hint in ``retry_after``) or ``PushRejected`` with a
  stable ``RejectionCode`` (out of stock, unknown SKU, bad address, bad credentials...).
  A connector never lets an ``httpx`` or ``KeyError`` escape: whatever it cannot classify is
  ``PushRejected(REJECTED)`` with the platform's message, or retryable when it is
  transport-level.
- **Nothing half-done is left behind** where the platform lets us clean up (a Vendure
  draft is deleted when an item is refused).
- **Amounts are ``Decimal``** in ``PushOrder.currency``: the mapping
  (``connectors.mapping``) has already chosen the base or buyer currency and converted.
  A connector converts to the platform's units (minor units for Vendure) and nothing else.
- Every method is a coroutine; a connector may hold an HTTP client, closed by ``aclose``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

import httpx


class RejectionCode(StrEnum):
    """Why a platform refused an order; retrying will not change its mind."""

    OUT_OF_STOCK = "out_of_stock"
    PRODUCT_NOT_FOUND = "product_not_found"
    INVALID_ADDRESS = "invalid_address"
    INVALID_CUSTOMER = "invalid_customer"
    SHIPPING_UNAVAILABLE = "shipping_unavailable"
    CURRENCY_UNSUPPORTED = "currency_unsupported"
    AUTH_FAILED = "auth_failed"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"  # the platform (store, API path) is not there
    INVALID_RESPONSE = "invalid_response"  # the platform answered something we cannot read
    REJECTED = "rejected"  # any other refusal, with the platform's message


class PushError(Exception):
    """Base of the only errors a connector raises::

        PushError
        ├── PushRetryable   try again later (after ``retry_after`` seconds if given)
        └── PushRejected    the platform refused the order (``code``); do not retry

    ``detail`` is a human-readable sentence for the push log and the merchant;
    ``platform_code`` the platform's own error code or HTTP status when there is one."""

    def __init__(self, detail: str, *, platform_code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.platform_code = platform_code


class PushRetryable(PushError):
    def __init__(
        self, detail: str, *, retry_after: float | None = None, platform_code: str | None = None
    ) -> None:
        super().__init__(detail, platform_code=platform_code)
        self.retry_after = retry_after


class PushRejected(PushError):
    def __init__(
        self,
        code: RejectionCode,
        detail: str,
        *,
        platform_code: str | None = None,
        skus: tuple[str, ...] = (),
    ) -> None:
        super().__init__(detail, platform_code=platform_code)
        self.code = code
        self.skus = skus  # the offending items, when the platform names them


@dataclass(frozen=True)
class PlatformOrder:
    """The platform's handle on an order we pushed: its id (what the platform's API takes)
    and its number (what the merchant sees in their back office)."""

    id: str
    number: str
    # A short summary of the platform's answer for the push log (state, total...).
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    detail: str
    code: RejectionCode | None = None


@dataclass(frozen=True)
class PushAddress:
    first_name: str
    last_name: str
    company: str | None
    line1: str
    line2: str | None
    city: str
    postal_code: str | None
    region: str | None
    country: str  # ISO 3166-1 alpha-2
    phone: str | None


@dataclass(frozen=True)
class PushLine:
    sku: str
    name: str
    quantity: int
    unit_price: Decimal  # before discount and tax
    discount: Decimal  # on the whole line
    tax: Decimal  # on the whole line
    tax_rate: Decimal  # percent
    total: Decimal  # what the buyer pays for the line, tax included
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PushShipping:
    method: str
    carrier: str | None
    price: Decimal
    tax: Decimal


@dataclass(frozen=True)
class PushTotals:
    items: Decimal
    discount: Decimal
    shipping: Decimal
    tax: Decimal
    duties: Decimal
    total: Decimal


@dataclass(frozen=True)
class PushOrder:
    """An order as every connector receives it: platform-neutral, amounts already in the
    currency the connection asked for (``connectors.mapping`` builds it)."""

    order_id: str  # ours, e.g. "3f1c...-1042": the external reference on the platform
    store_id: str
    placed_at: datetime
    currency: str  # of every amount below
    buyer_currency: str
    exchange_rate: Decimal  # buyer currency per unit of ``currency`` (1 when the same)
    language: str
    email: str
    first_name: str
    last_name: str
    phone: str | None
    billing: PushAddress
    shipping_address: PushAddress
    lines: tuple[PushLine, ...]
    shipping: PushShipping
    totals: PushTotals
    payment_method: str
    payment_reference: str
    source_name: str  # the sales channel name shown on the platform ("orderbridge")
    note: str  # carries our order id, and the buyer's note if any
    customer_note: str | None = None


@dataclass(frozen=True)
class ConnectionSettings:
    """What a connector is built from: the merchant's connection, secrets decrypted."""

    platform: str
    base_url: str
    credentials: Mapping[str, str]
    options: Mapping[str, str] = field(default_factory=dict)
    connect_timeout: float = 5.0
    timeout: float = 30.0


@runtime_checkable
class Connector(Protocol):
    platform: str

    async def create_order(self, order: PushOrder) -> PlatformOrder: ...

    async def find_order(self, order_id: str) -> PlatformOrder | None: ...

    async def test_connection(self) -> ConnectionCheck: ...

    async def aclose(self) -> None: ...


class ConnectorFactory(Protocol):
    """How a connector is made: usually the connector class itself. ``credential_fields``
    and ``option_fields`` name the keys a connection must (or may) give; the connections
    API validates against them (every credential field is required, except those a factory
    lists in an optional ``optional_credential_fields``: alternatives, whose combination the
    factory checks itself, raising ``ValueError``). ``transport`` lets tests and the
    benchmark route the HTTP client (``httpx``) without a network; connectors pass it to
    their client."""

    platform: str
    credential_fields: tuple[str, ...]
    option_fields: tuple[str, ...]

    def __call__(
        self, settings: ConnectionSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> Connector: ...
