"""The Merchant Account's order list: the API's filters (``orders.queries``) plus the
destination country, "needs attention" flags and a search that also finds customers by
name; keyset pages newest first, and the rows of a CSV export in batches.

Only the columns a list shows are read for the orders shown (never the order document),
and the ids of a page come from an index that holds the filter's column and the id:
``(store_id, id)`` for the plain list, ``(store_id, status, id)``,
``(store_id, shipping_country, id)``, ``(store_id, created_at, id)``, and the exact-match
search columns. A name search has its own plan (``_name_ids``). bench/ui_list.py measures
every case at 100,000 orders."""

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
    name: ColumnElement[bool] | None = None  # a name search's condition: see _name_ids


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
    where = _Where(conditions(replace(f, q=None)))
    q = (f.q or "").strip()
    if q:
        search, by_name = await _search(session, f.base.store_id, q)
        where.conditions.append(search)
        where.name = search if by_name else None
    return where


# How many of the newest orders a name search reads row by row before it reads the whole
# name index instead (see _name_ids).
NAME_WINDOW = 2_000


async def _name_ids(
    session: AsyncSession, where: _Where, *, newest_first: bool, limit: int
) -> list[int]:
    """The page's ids for a name search: a substring match, which no index can seek.

    A common name fills a page among the newest orders, so those are read first, newest
    first, at most ``NAME_WINDOW`` of them. A rare or absent name would make that walk read
    every row of the store, so then the matching ids are collected from the
    ``(store_id, customer_name, id)`` index instead (a materialised CTE, which neither
    planner can turn back into the walk: the store's whole name index is read, never its
    rows) and sorted."""
    if newest_first:
        assert where.name is not None
        others = [c for c in where.conditions if c is not where.name]
        boundary = await session.scalar(
            select(Order.id).where(*others).order_by(Order.id.desc()).offset(NAME_WINDOW).limit(1)
        )
        window = [Order.id > boundary] if boundary is not None else []
        statement = (
            select(Order.id)
            .where(*where.conditions, *window)
            .order_by(Order.id.desc())
            .limit(limit)
        )
        ids = list((await session.scalars(statement)).all())
        if boundary is None or len(ids) == limit:
            return ids
    matches = select(Order.id).where(*where.conditions).cte("matches").prefix_with("MATERIALIZED")
    key = matches.c.id.desc() if newest_first else matches.c.id
    return list((await session.scalars(select(matches.c.id).order_by(key).limit(limit))).all())


async def _rows(
    session: AsyncSession, where: _Where, *, newest_first: bool, limit: int
) -> list[Any]:
    """Two steps: the page's ids from an index of the filter (``(store_id, status, id)``,
    ``(store_id, shipping_country, id)``...: the row, with its large document, is never read
    for the orders that do not match), then the listed columns of those ids."""
    order = Order.id.desc() if newest_first else Order.id
    if where.name is not None:
        ids = await _name_ids(session, where, newest_first=newest_first, limit=limit)
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
