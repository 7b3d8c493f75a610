"""Appending events inside the caller's transaction.

Each event gets its feed position (txid, pos): ``txid`` identifies the writing transaction,
``pos`` counts the events that transaction wrote. On PostgreSQL ``txid`` is the server's
own transaction id (``pg_current_xact_id()``), taken inline in the INSERT. On SQLite, whose
writers are serialised by ``BEGIN IMMEDIATE``, it is one more than the largest txid stored,
read once per transaction under the write lock. Why this order is gap-free: events.feed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Table, Text, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.database import dialect_of
from orderbridge.db.models import Event
from orderbridge.orders.lifecycle import Actor

EVENTS: Table = Event.__table__  # type: ignore[assignment]

_POS_KEY = "orderbridge.feed_pos"


@dataclass(frozen=True)
class NewEvent:
    store_id: str
    name: str
    at: datetime
    actor: Actor
    order_id: int | None = None
    entity_id: str | None = None
    external_order_id: str | None = None
    external_order_number: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    reason: str | None = None
    note: str | None = None


# Something that must happen in the same transaction as an event (e.g. webhook deliveries);
# it gets the event and the id of its stored row.
EventListener = Callable[[AsyncSession, NewEvent, int], Awaitable[object]]


# The SQLite txid rule (see _insert_statement): the largest stored, plus one for the
# transaction's first event.
_SQLITE_TXID = {
    first: select(func.coalesce(func.max(EVENTS.c.txid), 0) + (1 if first else 0))
    for first in (True, False)
}


def _insert_statement(dialect: str, first_in_transaction: bool) -> Any:
    """The event INSERT, built once: only the values change between calls.

    PostgreSQL takes the writing transaction's id inline. SQLite, whose writers hold the
    write lock from BEGIN IMMEDIATE, takes one more than the largest txid stored for the
    transaction's first event, and that same largest txid for the next ones."""
    if dialect == "postgresql":
        txid: Any = func.pg_current_xact_id().cast(Text).cast(BigInteger)
    else:
        txid = _SQLITE_TXID[first_in_transaction].scalar_subquery()
    return insert(EVENTS).values(txid=txid).returning(EVENTS.c.id)


_STATEMENTS = {
    (dialect, first): _insert_statement(dialect, first)
    for dialect in ("postgresql", "sqlite")
    for first in (True, False)
}
# Several events of one transaction: SQLAlchemy sends their rows as one multi-row INSERT.
# PostgreSQL takes the transaction id inline in each row and returns the ids in the rows'
# order. SQLite gets the txid as a value, read first by _SQLITE_TXID under the write lock;
# asked to keep the rows' order it would send them one by one, so its ids come back unsorted
# and are sorted: a rowid table under the write lock gives the rows of one INSERT ascending
# ids in the order of its VALUES.
_INSERT_MANY = {
    "postgresql": insert(EVENTS)
    .values(txid=func.pg_current_xact_id().cast(Text).cast(BigInteger))
    .returning(EVENTS.c.id, sort_by_parameter_order=True),
    "sqlite": insert(EVENTS).returning(EVENTS.c.id),
}


class EventRecorder:
    def __init__(self, listeners: list[EventListener] | None = None) -> None:
        self.listeners = list(listeners or [])

    async def record(self, session: AsyncSession, event: NewEvent) -> int:
        pos = session.info.get(_POS_KEY, 0)
        session.info[_POS_KEY] = pos + 1
        statement = _STATEMENTS[(dialect_of(session), pos == 0)]
        connection = await session.connection()
        row_id = (await connection.execute(statement, _values(event, pos))).scalar()
        assert row_id is not None
        for listener in self.listeners:
            await listener(session, event, row_id)
        return int(row_id)

    def next_pos(self, session: AsyncSession) -> int:
        """The feed position within its transaction that the next event will take."""
        return int(session.info.get(_POS_KEY, 0))

    async def inserted(
        self,
        session: AsyncSession,
        event: NewEvent,
        row_id: int,
        *,
        done: Collection[EventListener] = (),
    ) -> None:
        """For a statement that inserted the event itself (at ``next_pos`` and with the
        transaction's txid, as ``record`` would): count it, and run the listeners whose
        work that statement did not already do."""
        session.info[_POS_KEY] = self.next_pos(session) + 1
        for listener in self.listeners:
            if listener not in done:
                await listener(session, event, row_id)

    async def record_many(self, session: AsyncSession, events: Sequence[NewEvent]) -> list[int]:
        """``record`` for several events, in their order, with their listeners: their rows
        in one INSERT (on SQLite after one read of the txid, by the same rule as
        ``record``'s)."""
        if len(events) < 2:
            return [await self.record(session, event) for event in events]
        pos = session.info.get(_POS_KEY, 0)
        session.info[_POS_KEY] = pos + len(events)
        dialect = dialect_of(session)
        connection = await session.connection()
        rows = [_values(event, pos + index) for index, event in enumerate(events)]
        if dialect == "sqlite":
            txid = (await connection.execute(_SQLITE_TXID[pos == 0])).scalar()
            for row in rows:
                row["txid"] = txid
        result = await connection.execute(_INSERT_MANY[dialect], rows)
        row_ids = [int(row_id) for row_id in result.scalars().all()]
        if dialect == "sqlite":
            row_ids.sort()
        assert len(row_ids) == len(events)
        for event, row_id in zip(events, row_ids, strict=True):
            for listener in self.listeners:
                await listener(session, event, row_id)
        return row_ids


def _values(event: NewEvent, pos: int) -> dict[str, Any]:
    return {
        "pos": pos,
        "store_id": event.store_id,
        "order_id": event.order_id,
        "name": event.name,
        "occurred_at": event.at,
        "entity_id": event.entity_id,
        "external_order_id": event.external_order_id,
        "external_order_number": event.external_order_number,
        "actor_kind": event.actor.kind.value,
        "actor_id": event.actor.id,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "reason": event.reason,
        "note": event.note,
    }
