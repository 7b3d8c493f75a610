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


def _search(store_id: str, q: str) -> ColumnElement[bool]:
    parsed = parse_order_id(q)
    if parsed is not None:
        return Order.id == parsed[1] if parsed[0] == store_id else false()
    matches: list[ColumnElement[bool]] = [
        Order.external_order_number == q,
        Order.external_order_id == q,
    ]
    if "@" in q:
        matches.append(Order.customer_email == q.lower())
    else:
        matches.append(Order.customer_name.icontains(q, autoescape=True))
    return or_(*matches)


def _attention(flags: tuple[Attention, ...]) -> ColumnElement[bool]:
    conditions: list[ColumnElement[bool]] = []
    if Attention.PUSH_FAILED in flags:
        conditions.append(Order.push_status == "failed")
    if Attention.REVIEW in flags:
        conditions.append(Order.review_status == "pending")
    if Attention.REFUND_FAILED in flags:
        conditions.append(exists().where(Refund.order_id == Order.id, Refund.status == "failed"))
    return or_(*conditions)


def conditions(f: ListFilter) -> list[ColumnElement[bool]]:
    where = filter_conditions(replace(f.base, q=None))
    q = (f.q or "").strip()
    if q:
        where.append(_search(f.base.store_id, q))
    if f.attention:
        where.append(_attention(f.attention))
    return where


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
    where = conditions(f)
    if before is not None:
        where.append(Order.id > before)
        statement = select(*COLUMNS).where(*where).order_by(Order.id).limit(limit + 1)
        found = list((await session.execute(statement)).all())
        more = len(found) > limit
        rows = list(reversed(found[:limit]))
        return Page(
            rows,
            newer=rows[0].id if rows and more else None,
            older=rows[-1].id if rows else None,
        )
    if after is not None:
        where.append(Order.id < after)
    statement = select(*COLUMNS).where(*where).order_by(Order.id.desc()).limit(limit + 1)
    found = list((await session.execute(statement)).all())
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
    where = conditions(f)
    if after is not None:
        where.append(Order.id < after)
    statement = select(*COLUMNS).where(*where).order_by(Order.id.desc()).limit(size)
    return (await session.execute(statement)).all()
