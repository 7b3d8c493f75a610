"""Processing configuration, reviews and payment confirmations as the API and the CLI show
them."""

from __future__ import annotations

from typing import Any

from orderbridge.clock import rfc3339
from orderbridge.db.models import Order, PaymentConfirmation
from orderbridge.ids import order_public_id
from orderbridge.money import format_amount
from orderbridge.processing.config import ProcessingConfig
from orderbridge.processing.reviews import PendingReview


def render_config(store_id: str, version: int, config: ProcessingConfig) -> dict[str, Any]:
    return {"store_id": store_id, "version": version, "config": config.model_dump(mode="json")}


def render_review(review: PendingReview) -> dict[str, Any]:
    order = review.order
    return {
        "order_id": order_public_id(order.store_id, order.id),
        "created_at": rfc3339(order.created_at),
        "currency": order.currency,
        "total": format_amount(order.total, order.currency),
        "customer_email": order.customer_email,
        "score": review.score,
        "hits": review.hits,
        "summary": review.summary,
        "review_deadline": rfc3339(order.review_deadline) if order.review_deadline else None,
        "on_deadline": review.on_deadline,
    }


def render_decision(order: Order) -> dict[str, Any]:
    return {
        "order_id": order_public_id(order.store_id, order.id),
        "review_status": order.review_status,
        "status": order.status,
    }


def render_confirmation(order: Order, confirmation: PaymentConfirmation) -> dict[str, Any]:
    return {
        "order_id": order_public_id(order.store_id, order.id),
        "amount": format_amount(confirmation.amount, order.currency),
        "currency": order.currency,
        "reference": confirmation.reference,
        "source": confirmation.source,
        "confirmed_at": rfc3339(confirmation.confirmed_at),
    }
