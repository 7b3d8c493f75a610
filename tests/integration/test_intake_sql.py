"""The intake writes its rows on the driver connection (orders.intake_sql: one statement on
PostgreSQL, four straight to aiosqlite on SQLite) instead of through the ORM session like
every other status change. Both ways must write the same rows, column for column: the same
order, the same event at the same feed position, the same deliveries to the same
endpoints, the same jobs."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.database import dialect_of
from orderbridge.db.models import Event, Job, Order, WebhookDelivery
from orderbridge.demo import sample_order
from orderbridge.orders.lifecycle import StatusChange
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.orders.service import OrderService, status_event
from tests.conftest import Api
from tests.webhooks.helpers import create_endpoint

pytestmark = pytest.mark.timeout(60)

ORDERS: Table = Order.__table__  # type: ignore[assignment]
_INSERT_ORDER = {
    name: dialect_insert(ORDERS)
    .on_conflict_do_nothing(index_elements=["store_id", "idempotency_key"])
    .returning(ORDERS.c.id)
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def _through_the_session(orders: OrderService) -> Any:
    """The generic path: the order with Core, then what ``OrderService.apply_many`` writes
    for any status change (the recorder with its listeners, the jobs, the hooks)."""

    async def insert(
        session: AsyncSession, values: dict[str, Any], change: StatusChange
    ) -> int | None:
        statement = _INSERT_ORDER[dialect_of(session)]
        order_id: int | None = (await session.execute(statement, values)).scalar()
        if order_id is not None:
            store_id = values["store_id"]
            event = status_event(store_id, order_id, change, external=(None, None))
            await orders.recorder.record(session, event)
            await orders._follow_up(session, store_id, order_id, change)
        return order_id

    return insert


# What differs between two orders written one after the other, by design.
_IGNORED = {"id", "order_id", "event_id", "idempotency_key", "txid"}


def _columns(row: Any) -> dict[str, Any]:
    return {
        column.key: getattr(row, column.key)
        for column in row.__table__.columns
        if column.key not in _IGNORED
    }


async def _written(api: Api, order_id: int) -> dict[str, Any]:
    async with api.container.db.reader() as session:
        order = await session.get(Order, order_id)
        events = (await session.scalars(select(Event).where(Event.order_id == order_id))).all()
        deliveries = (
            await session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.order_id == order_id)
                .order_by(WebhookDelivery.endpoint_id)
            )
        ).all()
        jobs = (await session.scalars(select(Job).where(Job.order_id == order_id))).all()
    assert order is not None
    assert all(d.event_id == events[0].id for d in deliveries)
    return {
        "order": _columns(order),
        "events": [_columns(e) for e in events],
        "deliveries": [_columns(d) for d in deliveries],
        "jobs": [_columns(j) for j in jobs],
    }


async def test_the_driver_statements_write_what_the_session_writes(api: Api) -> None:
    await create_endpoint(api, "http://127.0.0.1:9/all")
    await create_endpoint(api, "http://127.0.0.1:9/received", events=["order.received"])
    await create_endpoint(api, "http://127.0.0.1:9/ready", events=["order.ready"])
    await create_endpoint(api, "http://127.0.0.1:9/off", enabled=False)
    order = CheckoutOrder.model_validate(sample_order(random.Random(7)))
    orders, store_id = api.container.orders, api.keys.store_id

    async with api.container.db.transaction() as session:
        fast = await orders.receive(session, store_id, "driver", order)
    original = orders._insert_received
    orders._insert_received = _through_the_session(orders)  # type: ignore[method-assign]
    try:
        async with api.container.db.transaction() as session:
            generic = await orders.receive(session, store_id, "session", order)
    finally:
        orders._insert_received = original  # type: ignore[method-assign]

    written = await _written(api, fast.order.id)
    assert written == await _written(api, generic.order.id)
    assert len(written["deliveries"]) == 2 and len(written["jobs"]) == 1
    async with api.container.db.reader() as session:
        event = await session.scalar(select(Event).where(Event.order_id == fast.order.id))
    assert event is not None and event.pos == 0


async def test_a_repeated_key_writes_nothing(api: Api) -> None:
    await create_endpoint(api, "http://127.0.0.1:9/all")
    order = CheckoutOrder.model_validate(sample_order(random.Random(8)))
    async with api.container.db.transaction() as session:
        first = await api.container.orders.receive(session, api.keys.store_id, "k", order)
    async with api.container.db.transaction() as session:
        again = await api.container.orders.receive(session, api.keys.store_id, "k", order)
    assert (first.changed, again.changed) == (True, False)
    assert again.order.id == first.order.id
    counts = await _written(api, first.order.id)
    assert (len(counts["events"]), len(counts["deliveries"]), len(counts["jobs"])) == (1, 1, 1)
