"""The order on the wire: what a checkout submits (contract §5) and what the Order API
returns (contract §4). The checkout document, once checked, is stored as the order's
``document``; the response is built from it and the order's columns, nothing copied by hand.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, EmailStr, Field, IPvAnyAddress

from orderbridge.schemas_common import (
    Amount,
    CountryCode,
    CurrencyCode,
    InputModel,
    LanguageTag,
    Note,
    OptionalText,
    ShortText,
)

_In = InputModel


class Customer(_In):
    email: EmailStr
    first_name: ShortText
    last_name: ShortText
    phone: OptionalText = None


class Address(_In):
    first_name: ShortText
    last_name: ShortText
    company: OptionalText = None
    line1: ShortText
    line2: OptionalText = None
    city: ShortText
    postal_code: Annotated[str | None, Field(default=None, max_length=32)] = None
    region: OptionalText = None
    country: CountryCode
    phone: OptionalText = None


class ItemIn(_In):
    sku: Annotated[str, Field(min_length=1, max_length=128)]
    name: ShortText
    options: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=255)]] = (
        Field(default_factory=dict, max_length=20)
    )
    quantity: Annotated[int, Field(ge=1, le=100_000, strict=True)]
    unit_price: Amount
    discount: Amount = Decimal(0)
    tax_rate: Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4)] = Field(
        default=Decimal(0), description="percent of the net line amount, e.g. 20 for 20 %"
    )
    tax: Amount = Decimal(0)
    duty: Amount = Decimal(0)
    total: Amount
    hs_code: Annotated[str | None, Field(default=None, pattern=r"^\d{4,10}$")] = None
    category: Annotated[str | None, Field(default=None, max_length=64)] = None
    origin_country: CountryCode | None = None


class Shipping(_In):
    method: ShortText
    carrier: OptionalText = None
    price: Amount = Decimal(0)
    tax: Amount = Decimal(0)


class Totals(_In):
    items: Amount
    discount: Amount = Decimal(0)
    shipping: Amount = Decimal(0)
    tax: Amount = Decimal(0)
    duties: Amount = Decimal(0)
    total: Amount


class PaymentIn(_In):
    method: Annotated[str, Field(min_length=1, max_length=32, examples=["card"])]
    provider: Annotated[str, Field(min_length=1, max_length=32, examples=["test"])]
    reference: Annotated[str, Field(min_length=1, max_length=255)]


class Client(_In):
    ip: IPvAnyAddress | None = None
    user_agent: Annotated[str | None, Field(default=None, max_length=1024)] = None


class ExchangeRate(_In):
    rate: Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=10)]


class CheckoutOrder(_In):
    """An order as the buyer completed it at checkout (contract §5)."""

    checkout_id: Annotated[str | None, Field(default=None, min_length=1, max_length=128)] = None
    currency: CurrencyCode
    language: LanguageTag
    environment: Literal["live", "test"] = "live"
    exchange_rates: dict[CurrencyCode, ExchangeRate] = Field(default_factory=dict, max_length=20)
    customer: Customer
    billing_address: Address
    shipping_address: Address
    items: list[ItemIn] = Field(min_length=1, max_length=500)
    shipping: Shipping
    totals: Totals
    payment: PaymentIn
    client: Client = Field(default_factory=Client)
    customer_note: Note = None
    internal_note: Note = None


# ---- responses -------------------------------------------------------------------------


class External(BaseModel):
    order_id: str | None = None
    order_number: str | None = None


class ItemOut(BaseModel):
    id: str
    sku: str
    name: str
    options: dict[str, str]
    quantity: int
    unit_price: str
    discount: str
    tax_rate: str
    tax: str
    duty: str
    total: str
    hs_code: str | None
    category: str | None
    origin_country: str | None


class ShippingOut(BaseModel):
    method: str
    carrier: str | None
    price: str
    tax: str


class TotalsOut(BaseModel):
    items: str
    discount: str
    shipping: str
    tax: str
    duties: str
    total: str


class AddressOut(BaseModel):
    first_name: str
    last_name: str
    company: str | None
    line1: str
    line2: str | None
    city: str
    postal_code: str | None
    region: str | None
    country: str
    phone: str | None


class CustomerOut(BaseModel):
    email: str
    first_name: str
    last_name: str
    phone: str | None


class PaymentOut(BaseModel):
    method: str
    provider: str
    status: str
    authorized: str
    captured: str
    refunded: str
    reference: str


class CancellationOut(BaseModel):
    reason: str
    by: str
    note: str | None
    at: str


class ExchangeRateOut(BaseModel):
    rate: float


class OrderOut(BaseModel):
    """The full order (contract §4, ``GET /v2/orders/{store_id}/{order_id}``)."""

    id: str = Field(examples=["310678-936140"])
    store_id: str
    status: str
    external: External
    currency: str
    language: str
    environment: str
    customer_note: str | None
    internal_note: str | None
    exchange_rates: dict[str, ExchangeRateOut]
    created_at: str
    updated_at: str
    customer: CustomerOut
    billing_address: AddressOut
    shipping_address: AddressOut
    items: list[ItemOut]
    shipping: ShippingOut
    totals: TotalsOut
    payment: PaymentOut
    cancellation: CancellationOut | None
    refunds: list[dict[str, object]]
    returns: list[dict[str, object]]


class AcceptExternal(_In):
    order_id: Annotated[str, Field(min_length=1, max_length=64)]
    order_number: Annotated[str, Field(min_length=1, max_length=64)]


class AcceptRequest(_In):
    external: AcceptExternal


class CancelRequest(_In):
    reason: Literal["merchant_request", "fraud_detected"] = "merchant_request"
    note: Note = None


class TimelineEntry(BaseModel):
    """A status change or event (``kind`` ``status_changed`` / ``event``), or a processing
    step's outcome (``kind`` ``step``: ``step``, ``outcome``, ``summary``, ``evidence``)."""

    at: str
    kind: str
    event_id: str | None
    event_name: str | None
    from_status: str | None
    to_status: str | None
    actor: str
    actor_id: str | None
    reason: str | None
    note: str | None
    step: str | None = None
    outcome: str | None = None
    summary: str | None = None
    evidence: dict[str, Any] | None = None


class Links(BaseModel):
    next: str
    current: str
    previous: str


class OrderPage(BaseModel):
    links: Links
    orders: list[OrderOut]


class Timeline(BaseModel):
    order_id: str
    entries: list[TimelineEntry]
