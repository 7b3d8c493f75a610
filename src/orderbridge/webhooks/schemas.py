"""Webhook endpoints and deliveries on the wire (``/v2/webhooks/{store_id}``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from orderbridge.events.render import EVENT_NAMES
from orderbridge.schemas_common import InputModel

EventName = Annotated[str, Field(examples=["order.ready"])]


def _check_names(names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    unknown = sorted(set(names) - EVENT_NAMES)
    if unknown:
        raise ValueError(f"unknown event name(s): {', '.join(unknown)}")
    return sorted(set(names))


_In = InputModel


class EndpointCreate(_In):
    url: Annotated[
        str, Field(min_length=1, max_length=2048, examples=["https://shop.example/hooks"])
    ]
    events: list[EventName] = Field(
        default_factory=list, max_length=50, description="event names to send; empty: all"
    )
    description: Annotated[str | None, Field(default=None, max_length=255)] = None
    enabled: bool = True
    ordered: bool = Field(
        default=False,
        description="send one event at a time, in feed order: the next waits until the "
        "previous one succeeded or was given up",
    )
    max_concurrency: Annotated[int, Field(ge=1, le=100)] = 10
    rate_limit: Annotated[float | None, Field(default=None, gt=0, le=10_000)] = Field(
        default=None, description="requests per second at most (per worker process)"
    )

    _names = field_validator("events")(_check_names)


class EndpointUpdate(_In):
    url: Annotated[str | None, Field(default=None, min_length=1, max_length=2048)] = None
    events: list[EventName] | None = Field(default=None, max_length=50)
    description: Annotated[str | None, Field(default=None, max_length=255)] = None
    enabled: bool | None = None
    ordered: bool | None = None
    max_concurrency: Annotated[int | None, Field(default=None, ge=1, le=100)] = None
    rate_limit: Annotated[float | None, Field(default=None, gt=0, le=10_000)] = None

    _names = field_validator("events")(_check_names)


class EndpointOut(BaseModel):
    id: str
    store_id: str
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    ordered: bool
    max_concurrency: int
    rate_limit: float | None
    disabled_reason: str | None = Field(
        description="why the endpoint was disabled: `manual`, `gone` (it answered 410), "
        "`failing` (no success for the configured period)"
    )
    disabled_at: str | None
    failing_since: str | None
    last_success_at: str | None
    last_failure_at: str | None
    created_at: str
    updated_at: str


class EndpointCreated(EndpointOut):
    secret: str = Field(description="the signing secret, `whsec_…`: shown now and on reveal")


class SecretOut(BaseModel):
    secret: str
    created_at: str
    expires_at: str | None


class Secrets(BaseModel):
    endpoint_id: str
    secrets: list[SecretOut]


class RotateRequest(_In):
    overlap_hours: Annotated[float | None, Field(default=None, ge=0, le=24 * 7)] = None


class AttemptOut(BaseModel):
    attempt: int
    attempted_at: str
    duration_ms: int
    status_code: int | None
    response_body: str | None
    error: str | None


class DeliveryOut(BaseModel):
    id: int
    endpoint_id: str
    event_id: str
    event_name: str
    order_id: str | None
    status: str
    attempts: int
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str
    completed_at: str | None


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: int | None


class RecoverRequest(_In):
    since: Annotated[str, Field(description="RFC 3339 time with a zone")]


class RecoverResult(BaseModel):
    requeued: int
    created: int
