"""Plug & play on the wire: a store's connection (``/v2/connections/{store_id}``) and an
order's push log (``/v2/orders/{store_id}/{order_id}/push``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from orderbridge.connectors.mapping import CurrencyMode
from orderbridge.schemas_common import InputModel


class FailurePolicy(StrEnum):
    NOTIFY = "notify"  # emit order.push_failed, flag the order, keep it READY
    CANCEL = "cancel"  # cancel with store_push_failed: the buyer gets the money back


# Seconds after each failed attempt: 1 min, 5 min, 15 min, 40 min. With the default five
# attempts, the last one is about an hour after the first.
DEFAULT_RETRY_DELAYS = (60, 300, 900, 2400)
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_TIMEOUT = 20.0

FieldName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
FieldValue = Annotated[str, Field(max_length=4096)]


class ConnectionIn(InputModel):
    """A store's connection, created or replaced as a whole. Leaving ``credentials`` out
    (or giving only some fields) keeps the stored values of the missing fields, when the
    platform stays the same: a settings form need not ask for secrets again."""

    platform: Annotated[str, Field(min_length=1, max_length=32, examples=["shopify"])]
    base_url: Annotated[
        str, Field(min_length=1, max_length=2048, examples=["https://acme.myshopify.com"])
    ]
    credentials: dict[FieldName, FieldValue] = Field(
        default_factory=dict,
        max_length=20,
        description="the platform's credential fields (see GET /v2/connections/{store_id}"
        "/platforms); stored encrypted, never returned",
    )
    options: dict[FieldName, FieldValue] = Field(default_factory=dict, max_length=20)
    failure_policy: FailurePolicy = FailurePolicy.NOTIFY
    max_attempts: Annotated[int, Field(ge=1, le=20)] = DEFAULT_MAX_ATTEMPTS
    retry_delays: list[Annotated[int, Field(ge=1, le=86_400)]] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_DELAYS),
        min_length=1,
        max_length=20,
        description="seconds to wait after each failed attempt; the last repeats",
    )
    currency_mode: CurrencyMode = Field(
        default=CurrencyMode.BASE,
        description="`base`: the store's currency, converted with the order's exchange "
        "rate; `buyer`: the currency the buyer paid in",
    )
    timeout: Annotated[float, Field(ge=1, le=45)] = Field(
        default=DEFAULT_TIMEOUT, description="seconds per platform request"
    )
    enabled: bool = True

    @field_validator("platform")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class ConnectionTest(BaseModel):
    at: str
    ok: bool
    code: str | None
    detail: str | None


class ConnectionOut(BaseModel):
    store_id: str
    platform: str
    base_url: str
    credentials_set: list[str] = Field(description="which credential fields hold a value")
    options: dict[str, str]
    failure_policy: FailurePolicy
    max_attempts: int
    retry_delays: list[int]
    currency_mode: CurrencyMode
    timeout: float
    enabled: bool
    last_test: ConnectionTest | None
    created_at: str
    updated_at: str


class PlatformOut(BaseModel):
    platform: str
    credential_fields: list[str]
    option_fields: list[str]


class PushAttemptOut(BaseModel):
    run: int = Field(description="1 for the automatic push; each retry push adds one")
    attempt: int
    action: str = Field(description="`create`, or `find` (a retry looks for the order first)")
    started_at: str
    duration_ms: int
    outcome: str = Field(
        description="`pushed`, `found`, `retryable`, `rejected`, or `skipped` (the order "
        "was accepted or cancelled meanwhile)"
    )
    code: str | None
    detail: str | None
    platform_order_id: str | None
    platform_order_number: str | None
    request: dict[str, str]
    response: dict[str, str]


class PushLog(BaseModel):
    order_id: str
    status: str
    push_status: str | None = Field(
        description="null without plug & play; `pending`, `retrying`, `pushed`, `failed` "
        "(needs the merchant: accept by hand or retry), `skipped`"
    )
    attempts: list[PushAttemptOut]
