"""The gap-free event feed (contract §4).

The trap: ids drawn from a sequence become visible in commit order, not id order. A poller
reading ``WHERE id > :cursor`` can pass over id 41 while its transaction is still open,
see 42, move its cursor to 42, and never see 41.

Our order is (txid, pos), where txid is the writing transaction's id. On PostgreSQL a reader
first fixes a horizon H, then only returns events whose txid is below H, where H is the
smaller of
- the ``xmax`` of a snapshot (every id below it had been handed out), and
- the oldest transaction id still running *in this database* (``pg_stat_activity``).
Any transaction of this database with an id below H had therefore finished before the
horizon was read, so the page query, which takes its snapshot afterwards, sees all of its
events: no event can ever appear *behind* a cursor once it has been handed out. Events of
transactions still running, or of younger ones that happened to commit first, wait until
every older writer of this database has ended (milliseconds). Transactions in other
databases of the cluster cannot write our events, so, unlike a plain snapshot-``xmin``
horizon, they never hold the feed back. (``backend_xid`` is visible to every role.
Two-phase-commit prepared transactions are not in ``pg_stat_activity``; orderbridge does not
use them.)

On SQLite writers are serialised (BEGIN IMMEDIATE) and txids are handed out under the write
lock in commit order, so everything committed is in order already.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, exists, select, text, tuple_
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


# Row values, not "txid > t OR (txid = t AND pos > p)": PostgreSQL turns a row comparison
# into an index bound (a seek), the OR form into a scan from the start of the store's feed.
def _position_after(position: FeedPosition) -> ColumnElement[bool]:
    return tuple_(Event.txid, Event.pos) > tuple_(position.txid, position.pos)


def _position_before(position: FeedPosition) -> ColumnElement[bool]:
    return tuple_(Event.txid, Event.pos) < tuple_(position.txid, position.pos)


_HORIZON = text(
    "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,"
    " array(SELECT backend_xid::text::bigint FROM pg_stat_activity"
    "       WHERE datname = current_database() AND backend_xid IS NOT NULL)"
)


async def feed_horizon(session: AsyncSession) -> int:
    """The txid below which every event of this database is committed or never will be
    (PostgreSQL). Must run in a statement of its own, before the page query."""
    xmax, running = (await session.execute(_HORIZON)).one()
    horizon = int(xmax)
    for xid32 in running or ():
        horizon = min(horizon, _widen(int(xid32), int(xmax)))
    return horizon


def _widen(xid32: int, reference: int) -> int:
    """A 32-bit xid as the 64-bit id (epoch included) nearest below ``reference``: running
    transactions are always within 2^31 of the newest id."""
    full = (reference & ~0xFFFFFFFF) | xid32
    return full - (1 << 32) if full > reference else full


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
        conditions.append(Event.txid < await feed_horizon(session))
    backwards = query.before is not None
    if query.after is not None:
        conditions.append(_position_after(query.after))
    if query.before is not None:
        conditions.append(_position_before(query.before))
    order = (Event.txid.desc(), Event.pos.desc()) if backwards else (Event.txid, Event.pos)
    statement = select(Event).where(*conditions).order_by(*order).limit(query.limit)
    rows = (await session.scalars(statement)).all()
    return list(reversed(rows)) if backwards else rows
