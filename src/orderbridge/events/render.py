"""The event object on the wire (contract §4), shared by the feed and webhook bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from orderbridge.clock import rfc3339
from orderbridge.ids import FeedPosition, order_public_id

EVENT_NAMES = frozenset(
    {
        "order.received",
        "order.ready",
        "order.accepted",
        "order.completed",
        "order.cancelled",
        "order.push_failed",
        "refund.created",
        "refund.completed",
        "refund.failed",
        "return.requested",
        "return.authorized",
        "return.cancelled",
        "endpoint.disabled",
    }
)


class EventRecord(Protocol):
    """What rendering reads: an ``Event`` or a Core row of the events table."""

    txid: int
    pos: int
    name: str
    occurred_at: datetime
    store_id: str
    order_id: int | None
    external_order_id: str | None
    external_order_number: str | None
    entity_id: str | None


def render_event(event: EventRecord) -> dict[str, Any]:
    return {
        "event_id": FeedPosition(event.txid, event.pos).event_id(),
        "event_name": event.name,
        "event_at": rfc3339(event.occurred_at),
        "order_id": order_public_id(event.store_id, event.order_id) if event.order_id else None,
        "external": {
            "order_id": event.external_order_id,
            "order_number": event.external_order_number,
        },
        "entity_id": event.entity_id,
    }
