"""The gap-free event feed (contract §4).

The trap: ids drawn from a sequence become visible in commit order, not id order. A poller
reading ``WHERE id > :cursor`` can pass over id 41 while its transaction is still open,
see 42, move its cursor to 42, and never see 41.

Our order is (txid, pos), where txid is the writing transaction's id. On PostgreSQL a reader
only returns events whose txid is below the ``xmin`` of its own snapshot: every transaction
with a smaller id has then finished, so no event can ever appear *behind* a cursor once it
has been handed out. Events of transactions still running, or of younger ones that happen
to have committed first, wait a moment until every older transaction has ended. The cost
is that one long-running writing transaction anywhere in the cluster delays the feed (not
the writers) until it ends.

On SQLite writers are serialised (BEGIN IMMEDIATE) and txids are handed out under the write
lock in commit order, so everything committed is in order already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, ColumnElement, Text, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.database import dialect_of
from orderbridge.db.models import Event
from orderbridge.errors import BadRequest
from orderbridge.ids import FeedPosition


@dataclass(frozen=True)
class FeedQuery:
    store_id: str
    names: tuple[str, ...] = ()
    after: FeedPosition | None = None
    before: FeedPosition | None = None
    limit: int = 20


def parse_cursor(value: str | None, parameter: str) -> FeedPosition | None:
    if not value:
        return None
    try:
        return FeedPosition.from_event_id(value)
    except ValueError:
        raise BadRequest(f"{parameter} is not an event id", code="invalid_cursor") from None


def _position_after(position: FeedPosition) -> ColumnElement[bool]:
    return or_(
        Event.txid > position.txid, and_(Event.txid == position.txid, Event.pos > position.pos)
    )


def _position_before(position: FeedPosition) -> ColumnElement[bool]:
    return or_(
        Event.txid < position.txid, and_(Event.txid == position.txid, Event.pos < position.pos)
    )


async def cursor_exists(session: AsyncSession, store_id: str, position: FeedPosition) -> bool:
    query = select(
        exists().where(
            Event.store_id == store_id, Event.txid == position.txid, Event.pos == position.pos
        )
    )
    return bool(await session.scalar(query))


async def read_page(session: AsyncSession, query: FeedQuery) -> Sequence[Event]:
    """Events of one page, oldest first."""
    conditions = [Event.store_id == query.store_id]
    if query.names:
        conditions.append(Event.name.in_(query.names))
    if dialect_of(session) == "postgresql":
        horizon = func.pg_snapshot_xmin(func.pg_current_snapshot()).cast(Text).cast(BigInteger)
        conditions.append(Event.txid < horizon)
    backwards = query.before is not None
    if query.after is not None:
        conditions.append(_position_after(query.after))
    if query.before is not None:
        conditions.append(_position_before(query.before))
    order = (Event.txid.desc(), Event.pos.desc()) if backwards else (Event.txid, Event.pos)
    statement = select(Event).where(*conditions).order_by(*order).limit(query.limit)
    rows = (await session.scalars(statement)).all()
    return list(reversed(rows)) if backwards else rows
