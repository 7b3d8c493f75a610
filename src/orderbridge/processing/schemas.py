"""Processing on the wire: the store's configuration, the review queue, payment
confirmations (``/v2/stores/{id}/processing``, ``/v2/reviews/{id}``,
``/v2/payments/{id}/{order}/confirm``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from orderbridge.schemas_common import Amount, InputModel, Note


class ProcessingConfigOut(BaseModel):
    store_id: str
    version: int = Field(description="0: the built-in defaults, never changed")
    config: dict[str, Any]


class FraudHit(BaseModel):
    rule: str
    points: int
    why: str
    evidence: dict[str, str]


class ReviewOut(BaseModel):
    order_id: str
    created_at: str
    currency: str
    total: str
    customer_email: str
    score: int | None
    hits: list[FraudHit]
    summary: str
    review_deadline: str | None
    on_deadline: str = Field(description="what happens at the deadline: approve or reject")


class ReviewQueue(BaseModel):
    reviews: list[ReviewOut]


class ReviewDecisionIn(InputModel):
    note: Note = None


class ReviewDecisionOut(BaseModel):
    order_id: str
    review_status: str
    status: str = Field(description="the order's status; processing continues in the worker")


class PaymentConfirmationIn(InputModel):
    amount: Amount
    reference: Annotated[str | None, Field(default=None, min_length=1, max_length=255)] = None


class PaymentConfirmationOut(BaseModel):
    order_id: str
    amount: str
    currency: str
    reference: str | None
    source: str
    confirmed_at: str
