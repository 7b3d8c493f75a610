"""The Merchant Account's order list: the API's filters (``orders.queries``) plus the
destination country, "needs attention" flags and a search that also finds customers by
name; keyset pages newest first, and the rows of a CSV export in batches.

Only the columns a list shows are read (never the order document), and every filter is one
of the indexed columns of ``orders``, so a page stays a short index walk at 100,000 orders:
``(store_id, id)`` for the plain list, ``(store_id, status, id)``,
``(store_id, shipping_country, id)``, ``(store_id, created_at)``, and the exact-match
search columns. A name search is a case-insensitive substring match over the store's rows
newest first and stops at a page's worth (see bench/ui_list.py for what it costs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, exists, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import Order, Refund
from orderbridge.ids import parse_order_id
from orderbridge.orders.queries import OrderFilter, filter_conditions


class Attention(StrEnum):
    """Why an order needs the merchant."""

    PUSH_FAILED = "push_failed"  # plug & play gave up pushing it to the platform
    REVIEW = "review"  # held for a fraud review
    REFUND_FAILED = "refund_failed"  # a refund or cancellation release failed


ATTENTION_LABELS = {
    Attention.PUSH_FAILED: "Push to the platform failed",
    Attention.REVIEW: "Pending fraud review",
    Attention.REFUND_FAILED: "A refund failed",
}


@dataclass(frozen=True)
class ListFilter:
    """``base`` holds store, statuses, dates and country; ``q`` is the search box;
    ``attention`` keeps orders with any of the flags."""

    base: OrderFilter
    q: str | None = None
    attention: tuple[Attention, ...] = ()


COLUMNS = (
    Order.id,
    Order.store_id,
    Order.status,
    Order.created_at,
    Order.customer_name,
    Order.customer_email,
    Order.shipping_country,
    Order.currency,
    Order.total,
    Order.payment_status,
    Order.captured,
    Order.refunded,
    Order.external_order_id,
    Order.external_order_number,
    Order.cancel_reason,
    Order.review_status,
    Order.push_status,
)


async def _search(session: AsyncSession, store_id: str, q: str) -> tuple[ColumnElement[bool], bool]:
    """What the search box means, decided by its shape so that each kind is one indexed
    lookup: an order id; an email (exact, as stored); else an order number or platform id
    (exact) if any order has it, and otherwise a part of the customer's name (the second
    value says so)."""
    parsed = parse_order_id(q)
    if parsed is not None:
        return (Order.id == parsed[1] if parsed[0] == store_id else false()), False
    if "@" in q:
        return Order.customer_email == q.lower(), False
    external = or_(Order.external_order_number == q, Order.external_order_id == q)
    found = await session.scalar(
        select(Order.id).where(Order.store_id == store_id, external).limit(1)
    )
    if found is not None:
        return external, False
    return Order.customer_name.icontains(q, autoescape=True), True


def _attention(flags: tuple[Attention, ...]) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if Attention.PUSH_FAILED in flags:
        conditions.append(Order.push_status == "failed")
    if Attention.REVIEW in flags:
        conditions.append(Order.review_status == "pending")
    if Attention.REFUND_FAILED in flags:
        conditions.append(exists().where(Refund.order_id == Order.id, Refund.status == "failed"))
    return or_(*conditions)


@dataclass
class _Where:
    conditions: list[ColumnElement[bool]]
    by_name: bool  # a name search: see _rows


def conditions(f: ListFilter) -> list[ColumnElement[bool]]:
    """The filters and flags as SQL conditions (the dashboard counts with them). Not the
    search box: what it means depends on the data (``_search``), so it needs a session."""
    if f.q:
        raise ValueError("a search is resolved by list_page or export_batch")
    where = filter_conditions(replace(f.base, q=None))
    if f.attention:
        where.append(_attention(f.attention))
    return where


async def _where(session: AsyncSession, f: ListFilter) -> _Where:
    where = _Where(conditions(replace(f, q=None)), by_name=False)
    q = (f.q or "").strip()
    if q:
        search, where.by_name = await _search(session, f.base.store_id, q)
        where.conditions.append(search)
    return where


async def _rows(
    session: AsyncSession, where: _Where, *, newest_first: bool, limit: int
) -> list[Any]:
    """Two steps: the page's ids from an index of the filter (``(store_id, status, id)``,
    ``(store_id, customer_name, id)``...: the row, with its large document, is never read
    for the orders that do not match), then the listed columns of those ids.

    A name search is a substring match, which no index can seek. Left alone, both planners
    walk the store's orders newest first and read every row until a page is full: all of
    them when the name is rare. So the matching ids are first collected from the
    ``(store_id, customer_name, id)`` index (a materialised CTE: the whole index of the
    store is read, never the rows), then sorted."""
    order = Order.id.desc() if newest_first else Order.id
    if where.by_name:
        matches = (
            select(Order.id).where(*where.conditions).cte("matches").prefix_with("MATERIALIZED")
        )
        key = matches.c.id.desc() if newest_first else matches.c.id
        statement = select(matches.c.id).order_by(key).limit(limit)
    else:
        statement = select(Order.id).where(*where.conditions).order_by(order).limit(limit)
    ids = list((await session.scalars(statement)).all())
    if not ids:
        return []
    rows = await session.execute(select(*COLUMNS).where(Order.id.in_(ids)).order_by(order))
    return list(rows.all())


@dataclass(frozen=True)
class Page:
    rows: Sequence[Any]
    newer: int | None  # cursor for the newer page (before=), None on the first page
    older: int | None  # cursor for the next older page (after=), None on the last


async def list_page(
    session: AsyncSession,
    f: ListFilter,
    *,
    after: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> Page:
    """Newest first. ``after``: orders older than that id; ``before``: newer ones."""
    where = await _where(session, f)
    if before is not None:
        where.conditions.append(Order.id > before)
        found = await _rows(session, where, newest_first=False, limit=limit + 1)
        more = len(found) > limit
        rows = list(reversed(found[:limit]))
        return Page(
            rows,
            newer=rows[0].id if rows and more else None,
            older=rows[-1].id if rows else None,
        )
    if after is not None:
        where.conditions.append(Order.id < after)
    found = await _rows(session, where, newest_first=True, limit=limit + 1)
    rows = found[:limit]
    return Page(
        rows,
        newer=rows[0].id if rows and after is not None else None,
        older=rows[-1].id if rows and len(found) > limit else None,
    )


async def export_batch(
    session: AsyncSession, f: ListFilter, *, after: int | None, size: int = 1000
) -> Sequence[Any]:
    """The next ``size`` rows of an export, newest first, older than ``after``."""
    where = await _where(session, f)
    if after is not None:
        where.conditions.append(Order.id < after)
    return await _rows(session, where, newest_first=True, limit=size)
