"""The checkout intake's writes, on the driver's own connection.

Intake is the write the buyer waits on, and the busiest one. Every other status change
writes through the ORM session: the order, its event (``EventRecorder``), the event's
webhook deliveries (``webhooks.repository.create_deliveries``) and the status's follow-up
jobs (``jobs.queue.enqueue``). Most of what those statements cost is SQLAlchemy's async
machinery around each one, not the database: about 2 ms of CPU per order on either
backend. Here the same rows are written on the driver connection inside the session's
transaction (so the commit, the pool and the wake-ups stay the session's):

- PostgreSQL: one statement of data-modifying CTEs, one round trip (about 0.5 ms);
- SQLite, which has no data-modifying CTEs: the four statements, straight to aiosqlite
  (about 1 ms).

Values go through the columns' own SQLAlchemy bind processors, so they are stored exactly
as the ORM stores them. ``tests/integration/test_intake_sql.py`` writes an order both ways
on both backends and compares the rows column for column. A repeated idempotency key
writes nothing (on PostgreSQL the first CTE yields no row and the others select from
nothing; a concurrent duplicate waits for the first transaction to commit, as any INSERT
... ON CONFLICT does).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Dialect, Table
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import Order
from orderbridge.events.recorder import EventListener
from orderbridge.webhooks.repository import DeliveryStatus, create_deliveries

ORDERS: Table = Order.__table__  # type: ignore[assignment]

# The recorder's listeners whose rows these statements write themselves.
LISTENERS_DONE: tuple[EventListener, ...] = (create_deliveries,)

_DELIVERY_COLUMNS = (
    "endpoint_id, store_id, event_id, order_id, event_name, status, attempts, "
    "next_attempt_at, created_at, updated_at"
)
_EVENT_COLUMNS = "txid, pos, store_id, order_id, name, occurred_at, actor_kind, actor_id, to_status"
_JOB_COLUMNS = (
    "kind, order_id, payload, status, run_at, attempts, max_attempts, created_at, updated_at"
)
# An endpoint takes an event when it is enabled and its filter is empty (every event) or
# names it (``|order.received|order.ready|``). Event names are [a-z._]: no LIKE wildcard.
_ENDPOINT_TAKES_EVENT = (
    "endpoint.enabled AND (endpoint.event_filter = '' OR endpoint.event_filter LIKE {pattern})"
)


@cache
def _postgres_sql(columns: tuple[str, ...]) -> str:
    # Parameters used more than once are cast: PostgreSQL deduces one type per parameter.
    return f"""
WITH new_order AS (
    INSERT INTO orders ({", ".join(columns)})
    VALUES ({", ".join(f"%({name})s" for name in columns)})
    ON CONFLICT (store_id, idempotency_key) DO NOTHING
    RETURNING id
), new_event AS (
    INSERT INTO events ({_EVENT_COLUMNS})
    SELECT pg_current_xact_id()::text::bigint, %(pos)s, %(store_id)s::varchar, new_order.id,
           %(event_name)s::varchar, %(created_at)s::timestamptz, %(actor_kind)s,
           %(actor_id)s, %(status)s::varchar
    FROM new_order
    RETURNING id, order_id
), new_deliveries AS (
    INSERT INTO webhook_deliveries ({_DELIVERY_COLUMNS})
    SELECT endpoint.id, %(store_id)s::varchar, new_event.id, new_event.order_id,
           %(event_name)s::varchar, %(delivery_status)s, 0, %(created_at)s::timestamptz,
           %(created_at)s::timestamptz, %(created_at)s::timestamptz
    FROM new_event
    JOIN webhook_endpoints AS endpoint ON endpoint.store_id = %(store_id)s::varchar
     AND {_ENDPOINT_TAKES_EVENT.format(pattern="%(event_pattern)s")}
    RETURNING 1
), new_jobs AS (
    INSERT INTO jobs ({_JOB_COLUMNS})
    SELECT kind, new_event.order_id, '{{}}', %(job_status)s, %(created_at)s::timestamptz, 0,
           %(job_max_attempts)s, %(created_at)s::timestamptz, %(created_at)s::timestamptz
    FROM new_event CROSS JOIN unnest(%(job_kinds)s::varchar[]) AS kind
)
SELECT new_event.order_id, new_event.id, (SELECT count(*) FROM new_deliveries)
FROM new_event
"""


@dataclass(frozen=True)
class _SqliteStatements:
    order: str
    event: str
    deliveries: str
    job: str


@cache
def _sqlite_sql(columns: tuple[str, ...], first_event: bool) -> _SqliteStatements:
    # The recorder's txid on SQLite: one more than the largest stored for a transaction's
    # first event (BEGIN IMMEDIATE holds the write lock), that same largest for the next.
    txid = "coalesce(max(txid), 0) + 1" if first_event else "max(txid)"
    return _SqliteStatements(
        order=(
            f"INSERT INTO orders ({', '.join(columns)}) "
            f"VALUES ({', '.join(f':{name}' for name in columns)}) "
            "ON CONFLICT (store_id, idempotency_key) DO NOTHING RETURNING id"
        ),
        event=(
            f"INSERT INTO events ({_EVENT_COLUMNS}) "
            f"SELECT {txid}, :pos, :store_id, :order_id, :event_name, :created_at, "
            ":actor_kind, :actor_id, :status FROM events RETURNING id"
        ),
        deliveries=(
            f"INSERT INTO webhook_deliveries ({_DELIVERY_COLUMNS}) "
            "SELECT endpoint.id, :store_id, :event_id, :order_id, :event_name, "
            ":delivery_status, 0, :created_at, :created_at, :created_at "
            "FROM webhook_endpoints AS endpoint WHERE endpoint.store_id = :store_id AND "
            + _ENDPOINT_TAKES_EVENT.format(pattern=":event_pattern")
        ),
        job=(
            f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES (:kind, :order_id, '{{}}', "
            ":job_status, :created_at, 0, :job_max_attempts, :created_at, :created_at)"
        ),
    )


Processor = Callable[[Any], Any]


@cache
def _processors(dialect: Dialect, columns: tuple[str, ...]) -> dict[str, Processor]:
    """The bind processors of the orders columns (JSON, money, UTC datetimes): the values
    stored are the ORM's to the byte."""
    found: dict[str, Processor] = {}
    for name in columns:
        column_type = ORDERS.c[name].type
        processor = column_type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            found[name] = processor
    return found


@dataclass(frozen=True)
class Received:
    order_id: int
    event_id: int
    deliveries: int


async def insert_received(
    session: AsyncSession,
    order: dict[str, Any],
    *,
    event_name: str,
    event_pos: int,
    actor_kind: str,
    actor_id: str | None,
    job_kinds: Sequence[str],
    job_status: str,
    job_max_attempts: int,
) -> Received | None:
    """Insert the order (``order``: its column values, ``created_at`` the time of all),
    its event at feed position ``event_pos`` of the transaction, the event's deliveries and
    the order's jobs, in the session's transaction. None when the store already has an
    order with that idempotency key: nothing is written then."""
    dialect = session.get_bind().dialect
    columns = tuple(order)
    processors = _processors(dialect, columns)
    values = {
        name: processor(order[name]) if (processor := processors.get(name)) else order[name]
        for name in columns
    }
    values.update(
        pos=event_pos,
        event_name=event_name,
        event_pattern=f"%|{event_name}|%",
        actor_kind=actor_kind,
        actor_id=actor_id,
        delivery_status=DeliveryStatus.PENDING,
        job_status=job_status,
        job_max_attempts=job_max_attempts,
    )
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    if dialect.name == "postgresql":
        cursor = await driver.execute(
            _postgres_sql(columns), {**values, "job_kinds": list(job_kinds)}
        )
        row = await cursor.fetchone()
        return None if row is None else Received(row[0], row[1], row[2])
    return await _insert_sqlite(driver, _sqlite_sql(columns, event_pos == 0), values, job_kinds)


async def _insert_sqlite(
    driver: Any, sql: _SqliteStatements, values: dict[str, Any], job_kinds: Sequence[str]
) -> Received | None:
    cursor = await driver.execute(sql.order, values)
    row = await cursor.fetchone()
    if row is None:
        return None
    values["order_id"] = row[0]
    cursor = await driver.execute(sql.event, values)
    values["event_id"] = (await cursor.fetchone())[0]
    cursor = await driver.execute(sql.deliveries, values)
    deliveries = cursor.rowcount
    for kind in job_kinds:
        await driver.execute(sql.job, {**values, "kind": kind})
    return Received(values["order_id"], values["event_id"], deliveries)
