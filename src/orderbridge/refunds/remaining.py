"""What of an order can still be refunded, for a merchant deciding on a refund: the amount
left (captured − refunded − pending, as ``RefundService.create`` checks it), the units of
each line not yet refunded, and whether the shipping still is. The same reading of earlier
refunds as ``refunds.service._decide``: merchant refunds that are pending or succeeded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from orderbridge.db.models import Order, Refund
from orderbridge.money import ZERO
from orderbridge.payments.port import RefundStatus
from orderbridge.refunds.service import MERCHANT_REFUND

_OPEN = (RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value)


@dataclass(frozen=True)
class LineLeft:
    item_id: str
    sku: str
    name: str
    quantity: int
    left: int
    total: Decimal


@dataclass(frozen=True)
class Refundable:
    amount: Decimal  # what a refund may still take
    pending: Decimal
    lines: list[LineLeft]
    shipping: Decimal  # price plus tax; zero once refunded
    shipping_refunded: bool


def remaining(order: Order, refunds: Sequence[Refund]) -> Refundable:
    pending = sum((r.amount for r in refunds if r.status == RefundStatus.PENDING.value), ZERO)
    taken: dict[str, int] = {}
    shipping_taken = False
    for refund in refunds:
        if refund.kind != MERCHANT_REFUND or refund.status not in _OPEN:
            continue
        for line in (refund.items or {}).get("items", []):
            taken[line["item_id"]] = taken.get(line["item_id"], 0) + int(line["quantity"])
        shipping_taken = shipping_taken or bool((refund.items or {}).get("shipping"))
    lines = [
        LineLeft(
            item_id=item["id"],
            sku=item["sku"],
            name=item["name"],
            quantity=int(item["quantity"]),
            left=int(item["quantity"]) - taken.get(item["id"], 0),
            total=Decimal(item["total"]),
        )
        for item in order.document["items"]
    ]
    shipping = order.document["shipping"]
    return Refundable(
        amount=max(order.captured - order.refunded - pending, ZERO),
        pending=pending,
        lines=lines,
        shipping=ZERO if shipping_taken else Decimal(shipping["price"]) + Decimal(shipping["tax"]),
        shipping_refunded=shipping_taken,
    )
