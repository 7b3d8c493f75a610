"""Data a run needs, made outside the timed phases.

Stores and keys are created through the service layer (``orderbridge.stores.service``),
exactly as the CLI does. The feed's 100,000 events are bulk-inserted through SQL for speed,
but they are real rows: orders of the store that went RECEIVED → READY → ACCEPTED →
COMPLETED, one event per writing transaction, each with the feed position the recorder
would have given it. On SQLite that is one more than the largest txid (the recorder's
rule), so plain sequential txids are exact. On PostgreSQL it must be the id of a committed
transaction, so a server-side loop commits after every event and takes
``pg_current_xact_id()`` each time (about 100,000 transactions, a few seconds with
``synchronous_commit`` off for that session only).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from sqlalchemy import Engine, create_engine, insert, select

from bench.databases import BenchDatabase
from orderbridge.clock import SystemClock
from orderbridge.db.database import Database
from orderbridge.db.models import Event, Order
from orderbridge.demo import sample_order
from orderbridge.ids import FeedPosition
from orderbridge.orders.document import build_document
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.orders.service import request_hash
from orderbridge.stores import service as stores

EVENTS_PER_ORDER = 4
WAVE = 100  # orders that move through one stage together (events interleave per wave)
STAGES = (
    # (event name, from, to, actor kind, actor id)
    ("order.received", None, "RECEIVED", "system", "checkout"),
    ("order.ready", "RECEIVED", "READY", "system", "processing"),
    ("order.accepted", "READY", "ACCEPTED", "merchant", "bench-merchant"),
    ("order.completed", "ACCEPTED", "COMPLETED", "system", "finalisation"),
)


@dataclass(frozen=True)
class StoreKeys:
    store_id: str
    merchant_key: str
    checkout_key: str


async def create_store_with_keys(
    database: BenchDatabase, name: str, *, country: str = "FR"
) -> StoreKeys:
    db = Database(database.url, pool_size=2)
    now = SystemClock().now()
    try:
        async with db.transaction() as session:
            store = await stores.create_store(
                session, name=name, currency="EUR", country=country, now=now
            )
            merchant = await stores.issue_key(
                session, store_id=store.id, kind=stores.KeyKind.MERCHANT, now=now, label="bench"
            )
            checkout = await stores.issue_key(
                session, store_id=store.id, kind=stores.KeyKind.CHECKOUT, now=now, label="bench"
            )
    finally:
        await db.dispose()
    return StoreKeys(store.id, merchant.secret, checkout.secret)


def check_event_count(count: int) -> None:
    if count <= 0 or count % (EVENTS_PER_ORDER * WAVE):
        raise ValueError(f"the feed's event count must be a multiple of {EVENTS_PER_ORDER * WAVE}")


def _event_slot(index: int) -> tuple[int, int]:
    """(stage, order number) of the index-th event: waves of WAVE orders, stage by stage."""
    wave, offset = divmod(index, EVENTS_PER_ORDER * WAVE)
    stage, member = divmod(offset, WAVE)
    return stage, wave * WAVE + member


def order_rows(store_id: str, count: int, start: datetime) -> list[dict[str, Any]]:
    rng = random.Random(7)
    templates = []
    for _ in range(16):
        order = CheckoutOrder.model_validate(sample_order(rng))
        templates.append((order, build_document(order), request_hash(order)))
    rows = []
    for number in range(count):
        order, document, digest = templates[number % len(templates)]
        rows.append(
            {
                "store_id": store_id,
                "status": "COMPLETED",
                "idempotency_key": f"seed-{number}",
                "request_hash": digest,
                "environment": order.environment,
                "currency": order.currency,
                "total": order.totals.total,
                "customer_email": order.customer.email.lower(),
                "customer_name": f"{order.customer.first_name} {order.customer.last_name}",
                "shipping_country": order.shipping_address.country,
                "payment_status": "pending",
                "authorized": order.totals.total,
                "captured": order.totals.total,
                "refunded": 0,
                "external_order_id": f"E{number}",
                "external_order_number": f"N{number}",
                "created_at": start,
                "updated_at": start,
                "document": document,
            }
        )
    return rows


def _sqlite_events(
    engine: Engine, store_id: str, order_ids: list[int], count: int, start: datetime
) -> None:
    with engine.begin() as connection:
        stored = connection.scalar(select(Event.txid).order_by(Event.txid.desc()).limit(1))
        first_txid = int(stored or 0) + 1
        rows = []
        for index in range(count):
            stage, number = _event_slot(index)
            name, from_status, to_status, actor_kind, actor_id = STAGES[stage]
            external = stage >= 2
            rows.append(
                {
                    "txid": first_txid + index,
                    "pos": 0,
                    "store_id": store_id,
                    "order_id": order_ids[number],
                    "name": name,
                    "occurred_at": start + timedelta(milliseconds=index),
                    "external_order_id": f"E{number}" if external else None,
                    "external_order_number": f"N{number}" if external else None,
                    "actor_kind": actor_kind,
                    "actor_id": actor_id,
                    "from_status": from_status,
                    "to_status": to_status,
                }
            )
        connection.execute(insert(Event), rows)


def _postgres_events(database: BenchDatabase, store_id: str, count: int) -> None:
    if not store_id.isdigit():  # it is spliced into the DO block below
        raise ValueError(f"unexpected store id {store_id!r}")
    array = ", ".join
    names = array(f"'{stage[0]}'" for stage in STAGES)
    froms = array("NULL" if stage[1] is None else f"'{stage[1]}'" for stage in STAGES)
    tos = array(f"'{stage[2]}'" for stage in STAGES)
    kinds = array(f"'{stage[3]}'" for stage in STAGES)
    actors = array(f"'{stage[4]}'" for stage in STAGES)
    block = f"""
DO $$
DECLARE
  ids bigint[] := ARRAY(SELECT id FROM orders WHERE store_id = '{store_id}' ORDER BY id);
  names text[] := ARRAY[{names}];
  froms text[] := ARRAY[{froms}]::text[];
  tos text[] := ARRAY[{tos}];
  kinds text[] := ARRAY[{kinds}];
  actors text[] := ARRAY[{actors}];
  start timestamptz := now() - interval '1 hour';
  stage int;
  number int;
BEGIN
  FOR i IN 0..{count - 1} LOOP
    stage := (i % {EVENTS_PER_ORDER * WAVE}) / {WAVE};
    number := (i / {EVENTS_PER_ORDER * WAVE}) * {WAVE} + i % {WAVE};
    INSERT INTO events (txid, pos, store_id, order_id, name, occurred_at, external_order_id,
                        external_order_number, actor_kind, actor_id, from_status, to_status)
    VALUES (pg_current_xact_id()::text::bigint, 0, '{store_id}', ids[number + 1],
            names[stage + 1], start + i * interval '1 millisecond',
            CASE WHEN stage >= 2 THEN 'E' || number END,
            CASE WHEN stage >= 2 THEN 'N' || number END,
            kinds[stage + 1], actors[stage + 1], froms[stage + 1], tos[stage + 1]);
    COMMIT;
  END LOOP;
END $$;
"""
    conninfo = database.sync_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("SET synchronous_commit = off")
        connection.execute(block)
        # What autovacuum would have done by now on a live system with this many rows.
        connection.execute("VACUUM ANALYZE events, orders")


def seed_feed(database: BenchDatabase, store_id: str, count: int) -> list[FeedPosition]:
    """Store ``count`` events for the store; returns their positions in feed order."""
    check_event_count(count)
    start = datetime.now(UTC) - timedelta(hours=1)
    engine = create_engine(
        database.sync_url, json_serializer=lambda value: orjson.dumps(value).decode()
    )
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(Order), order_rows(store_id, count // EVENTS_PER_ORDER, start)
            )
            order_ids = list(
                connection.scalars(
                    select(Order.id).where(Order.store_id == store_id).order_by(Order.id)
                )
            )
        if database.backend == "postgresql":
            _postgres_events(database, store_id, count)
        else:
            _sqlite_events(engine, store_id, order_ids, count, start)
        with engine.connect() as connection:
            rows = connection.execute(
                select(Event.txid, Event.pos)
                .where(Event.store_id == store_id)
                .order_by(Event.txid, Event.pos)
            ).all()
    finally:
        engine.dispose()
    return [FeedPosition(row.txid, row.pos) for row in rows]
