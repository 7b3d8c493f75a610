"""Webhook endpoints, deliveries and attempts as the API and the CLI show them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orderbridge.clock import rfc3339
from orderbridge.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orderbridge.events.render import EventRecord
from orderbridge.ids import FeedPosition, order_public_id
from orderbridge.webhooks.repository import filter_names


def optional_time(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment is not None else None


def render_endpoint(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "store_id": endpoint.store_id,
        "url": endpoint.url,
        "events": filter_names(endpoint.event_filter),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "ordered": endpoint.ordered,
        "max_concurrency": endpoint.max_concurrency,
        "rate_limit": endpoint.rate_limit,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": optional_time(endpoint.disabled_at),
        "failing_since": optional_time(endpoint.failing_since),
        "last_success_at": optional_time(endpoint.last_success_at),
        "last_failure_at": optional_time(endpoint.last_failure_at),
        "created_at": rfc3339(endpoint.created_at),
        "updated_at": rfc3339(endpoint.updated_at),
    }


def render_delivery(delivery: WebhookDelivery, event: EventRecord | None = None) -> dict[str, Any]:
    finished = delivery.status in ("succeeded", "failed")
    return {
        "id": delivery.id,
        "endpoint_id": delivery.endpoint_id,
        "event_id": FeedPosition(event.txid, event.pos).event_id() if event else "",
        "event_name": delivery.event_name,
        "order_id": order_public_id(delivery.store_id, delivery.order_id)
        if delivery.order_id
        else None,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": None if finished else optional_time(delivery.next_attempt_at),
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": rfc3339(delivery.created_at),
        "completed_at": optional_time(delivery.completed_at),
    }


def render_attempt(attempt: WebhookAttempt) -> dict[str, Any]:
    return dict(
        attempt=attempt.attempt,
        attempted_at=rfc3339(attempt.attempted_at),
        duration_ms=attempt.duration_ms,
        status_code=attempt.status_code,
        response_body=attempt.response_body,
        error=attempt.error,
    )
