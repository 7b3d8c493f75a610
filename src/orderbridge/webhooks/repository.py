"""Webhook tables and the SQL that every part shares: the delivery statuses, creating
deliveries with their event, and reading events and endpoints. The dispatcher's queue
(claiming, leases) is in ``webhooks.claims``, the writing of results in ``webhooks.results``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import (
    Table,
    bindparam,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.database import wake_after_commit
from orderbridge.db.models import (
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from orderbridge.events.recorder import NewEvent
from orderbridge.events.render import EventRecord

DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[assignment]
ATTEMPTS: Table = WebhookAttempt.__table__  # type: ignore[assignment]
WEBHOOK_ENDPOINTS: Table = WebhookEndpoint.__table__  # type: ignore[assignment]
EVENTS: Table = Event.__table__  # type: ignore[assignment]


class DeliveryStatus:
    PENDING = "pending"
    SENDING = "sending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # gave up after the whole schedule


# The columns a new delivery is inserted with (from a SELECT over endpoints or events).
NEW_DELIVERY_COLUMNS = [
    "endpoint_id",
    "store_id",
    "event_id",
    "order_id",
    "event_name",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
]


def filter_text(names: Iterable[str]) -> str:
    names = sorted(set(names))
    return f"|{'|'.join(names)}|" if names else ""


def filter_names(text: str) -> list[str]:
    return [name for name in text.split("|") if name]


def _create_deliveries_statement() -> Any:
    e = WebhookEndpoint
    at = DELIVERIES.c.created_at.type
    matching = select(
        e.id,
        bindparam("store_id"),
        bindparam("event_id"),
        bindparam("order_id", type_=DELIVERIES.c.order_id.type),
        bindparam("event_name"),
        literal(DeliveryStatus.PENDING),
        literal(0),
        bindparam("at", type_=at),
        bindparam("at", type_=at),
        bindparam("at", type_=at),
    ).where(
        e.store_id == bindparam("store_id"),
        e.enabled.is_(True),
        or_(e.event_filter == "", e.event_filter.like(bindparam("pattern"))),
    )
    # An INSERT's row count is only kept when asked for (psycopg reports -1 otherwise).
    return (
        insert(DELIVERIES)
        .from_select(NEW_DELIVERY_COLUMNS, matching)
        .execution_options(preserve_rowcount=True)
    )


# Built once: it runs with every event, inside the event's transaction.
_CREATE_DELIVERIES = _create_deliveries_statement()


async def create_deliveries(session: AsyncSession, event: NewEvent, event_row_id: int) -> int:
    """One delivery per enabled endpoint of the event's store whose filter matches, in the
    event's own transaction (one statement; nothing when the store has no endpoints)."""
    # Event names are [a-z._]: no LIKE wildcard can hide in them.
    result = await (await session.connection()).execute(
        _CREATE_DELIVERIES,
        {
            "store_id": event.store_id,
            "event_id": event_row_id,
            "order_id": event.order_id,
            "event_name": event.name,
            "at": event.at,
            "pattern": f"%|{event.name}|%",
        },
    )
    created = int(result.rowcount or 0)
    if created:
        wake_after_commit(session, "webhooks")
    return created


_EVENTS = select(EVENTS).where(EVENTS.c.id.in_(bindparam("ids", expanding=True)))


async def events_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, EventRecord]:
    """Events as plain rows: the dispatcher renders hundreds a second and needs no ORM."""
    connection = await session.connection()
    rows = await connection.execute(_EVENTS, {"ids": list(set(ids))})
    return {row.id: cast(EventRecord, row) for row in rows.all()}


async def endpoints_by_id(session: AsyncSession, ids: Iterable[str]) -> dict[str, WebhookEndpoint]:
    rows = await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(set(ids))))
    return {endpoint.id: endpoint for endpoint in rows.all()}
