"""The wire shapes of refunds (contract §4): the merchant's request and a refund as the API
answers it, in ``GET .../refunds`` and in the order's ``refunds[]``."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, Field, model_validator

from orderbridge.clock import rfc3339
from orderbridge.db.models import Refund
from orderbridge.ids import order_public_id
from orderbridge.money import format_amount
from orderbridge.schemas_common import Amount, InputModel, OptionalText

# Item ids are "1", "2", … in submission order (orders.document.build_document).
ItemId = Annotated[str, Field(min_length=1, max_length=18, pattern=r"^[1-9][0-9]{0,17}$")]


class RefundItem(InputModel):
    item_id: ItemId = Field(examples=["1"])
    quantity: Annotated[int, Field(strict=True, ge=1, le=1_000_000)] = Field(examples=[1])


class RefundRequest(InputModel):
    """Either ``amount``, or ``items`` and/or ``shipping``: exactly one way."""

    amount: Amount | None = Field(
        default=None, description="in the order currency's precision", examples=["10.00"]
    )
    items: list[RefundItem] | None = Field(default=None, max_length=500)
    shipping: Annotated[bool | None, Field(strict=True)] = Field(
        default=None, description="refund the shipping price and its tax"
    )
    reason: OptionalText = None

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        by_lines = self.items is not None or self.shipping is not None
        if self.amount is not None and by_lines:
            raise ValueError("give an amount, or items and shipping, not both")
        if self.amount is None and not by_lines:
            raise ValueError("give an amount, or items and/or shipping")
        if self.items is not None:
            ids = [item.item_id for item in self.items]
            if len(set(ids)) != len(ids):
                raise ValueError("each item_id may appear once")
        return self

    def canonical(self) -> dict[str, Any]:
        """What an idempotent repeat must match: the same refund, however it is spelled."""
        return {
            "amount": None if self.amount is None else format(self.amount.normalize(), "f"),
            "items": [[i.item_id, i.quantity] for i in self.items or []],
            "shipping": bool(self.shipping),
            "reason": self.reason,
        }


class RefundItemOut(BaseModel):
    item_id: str
    quantity: int
    amount: str


class RefundOut(BaseModel):
    """A refund: the merchant's (``kind`` ``refund``) or a cancellation's release of the money
    (``kind`` ``cancellation``)."""

    id: str = Field(examples=["rf_3k9QHzP2xY1w"])
    order_id: str = Field(examples=["310678-936140"])
    kind: str = Field(examples=["refund"])
    status: str = Field(description="pending, succeeded or failed")
    amount: str = Field(examples=["10.00"])
    currency: str
    reason: str | None
    items: list[RefundItemOut]
    shipping: bool
    created_at: str
    completed_at: str | None
    failure_reason: str | None


class RefundList(BaseModel):
    refunds: list[RefundOut]


def render_refund(refund: Refund) -> dict[str, Any]:
    lines = refund.items or {}
    return {
        "id": refund.id,
        "order_id": order_public_id(refund.store_id, refund.order_id),
        "kind": refund.kind,
        "status": refund.status,
        "amount": format_amount(refund.amount, refund.currency),
        "currency": refund.currency,
        "reason": refund.reason,
        "items": [
            {"item_id": i["item_id"], "quantity": i["quantity"], "amount": i["amount"]}
            for i in lines.get("items", [])
        ],
        "shipping": bool(lines.get("shipping", False)),
        "created_at": rfc3339(refund.created_at),
        "completed_at": rfc3339(refund.completed_at) if refund.completed_at else None,
        "failure_reason": refund.failure_reason,
    }
