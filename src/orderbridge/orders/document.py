"""From the validated checkout order to the stored document, and from the stored order to
its wire form (contract §4). The document keeps what the buyer submitted, with amounts in
the currency's precision and an id per item; the order's columns hold what changes."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from orderbridge.clock import rfc3339
from orderbridge.db.models import Order, Refund
from orderbridge.ids import order_public_id
from orderbridge.money import format_amount
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.refunds.schemas import render_refund

_ITEM_AMOUNTS = ("unit_price", "discount", "tax", "duty", "total")


def build_document(order: CheckoutOrder) -> dict[str, Any]:
    cur = order.currency

    def money(value: Decimal) -> str:
        return format_amount(value, cur)

    items = []
    for number, item in enumerate(order.items, start=1):
        data = item.model_dump(mode="json")
        data.update({field: money(getattr(item, field)) for field in _ITEM_AMOUNTS})
        data["tax_rate"] = str(item.tax_rate.normalize())
        items.append({"id": str(number), **data})
    shipping = order.shipping.model_dump(mode="json")
    shipping.update(price=money(order.shipping.price), tax=money(order.shipping.tax))
    totals = {name: money(value) for name, value in order.totals}
    return {
        "checkout_id": order.checkout_id,
        "language": order.language,
        "exchange_rates": {code: str(rate.rate) for code, rate in order.exchange_rates.items()},
        "customer": order.customer.model_dump(mode="json"),
        "billing_address": order.billing_address.model_dump(mode="json"),
        "shipping_address": order.shipping_address.model_dump(mode="json"),
        "items": items,
        "shipping": shipping,
        "totals": totals,
        "payment": order.payment.model_dump(mode="json"),
        "client": order.client.model_dump(mode="json"),
        "customer_note": order.customer_note,
        "internal_note": order.internal_note,
    }


def render_order(order: Order, refunds: Sequence[Refund] = ()) -> dict[str, Any]:
    """``refunds``: the order's refund rows (``refunds.service.refunds_by_order``), oldest
    first; callers that did not load them render an empty list."""
    doc = order.document
    cur = order.currency
    cancellation = None
    if order.cancelled_at is not None:
        cancellation = {
            "reason": order.cancel_reason,
            "by": order.cancelled_by,
            "note": order.cancel_note,
            "at": rfc3339(order.cancelled_at),
        }
    return {
        "id": order_public_id(order.store_id, order.id),
        "store_id": order.store_id,
        "status": order.status,
        "external": {
            "order_id": order.external_order_id,
            "order_number": order.external_order_number,
        },
        "currency": cur,
        "language": doc["language"],
        "environment": order.environment,
        "customer_note": doc["customer_note"],
        "internal_note": doc["internal_note"],
        "exchange_rates": {
            code: {"rate": float(rate)} for code, rate in doc["exchange_rates"].items()
        },
        "created_at": rfc3339(order.created_at),
        "updated_at": rfc3339(order.updated_at),
        "customer": doc["customer"],
        "billing_address": doc["billing_address"],
        "shipping_address": doc["shipping_address"],
        "items": doc["items"],
        "shipping": doc["shipping"],
        "totals": doc["totals"],
        "payment": {
            "method": doc["payment"]["method"],
            "provider": doc["payment"]["provider"],
            "reference": doc["payment"]["reference"],
            "status": order.payment_status,
            "authorized": format_amount(order.authorized, cur),
            "captured": format_amount(order.captured, cur),
            "refunded": format_amount(order.refunded, cur),
        },
        "cancellation": cancellation,
        "refunds": [render_refund(refund) for refund in refunds],
        "returns": [],
    }
