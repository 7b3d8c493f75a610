"""The push log on the wire (API and CLI): an order's push status and every attempt."""

from __future__ import annotations

from typing import Any

from orderbridge.clock import rfc3339
from orderbridge.db.models import Order, PushAttempt
from orderbridge.ids import order_public_id


def render_attempt(attempt: PushAttempt) -> dict[str, Any]:
    return {
        "run": attempt.run,
        "attempt": attempt.attempt,
        "action": attempt.action,
        "started_at": rfc3339(attempt.started_at),
        "duration_ms": attempt.duration_ms,
        "outcome": attempt.outcome,
        "code": attempt.code,
        "detail": attempt.detail,
        "platform_order_id": attempt.platform_order_id,
        "platform_order_number": attempt.platform_order_number,
        "request": attempt.request,
        "response": attempt.response,
    }


def render_log(order: Order, attempts: list[PushAttempt]) -> dict[str, Any]:
    return {
        "order_id": order_public_id(order.store_id, order.id),
        "status": order.status,
        "push_status": order.push_status,
        "attempts": [render_attempt(a) for a in attempts],
    }
