"""Counts for the Merchant Account dashboard: how many of a store's orders were received in
a period, by their status now (one grouped query over the ``(store_id, created_at)``
range the order list's date filter uses), and how many need attention."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, case, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import Order, Refund
from orderbridge.orders.lifecycle import OrderStatus
from orderbridge.orders.listing import Attention


@dataclass(frozen=True)
class StatusCounts:
    """Orders received since the start of each period, by current status."""

    today: dict[str, int] = field(default_factory=dict)
    week: dict[str, int] = field(default_factory=dict)

    @property
    def today_total(self) -> int:
        return sum(self.today.values())

    @property
    def week_total(self) -> int:
        return sum(self.week.values())


async def status_counts(
    session: AsyncSession, store_id: str, *, day_start: datetime, week_start: datetime
) -> StatusCounts:
    """Both periods in one pass over the longer one (a week starts on or before its day).

    The period's rows are picked first, in a materialised CTE, so that both planners walk
    the ``(store_id, created_at, id)`` range; grouped directly, SQLite prefers the
    ``(store_id, status, id)`` index for the GROUP BY and reads every order of the store
    (10x slower at 100,000 orders)."""
    since = min(day_start, week_start)
    period = (
        select(Order.status, Order.created_at)
        .where(Order.store_id == store_id, Order.created_at >= since)
        .cte("period")
        .prefix_with("MATERIALIZED")
    )
    statement = select(
        period.c.status,
        func.count(),
        func.sum(case((period.c.created_at >= day_start, 1), else_=0)),
    ).group_by(period.c.status)
    today: dict[str, int] = {}
    week: dict[str, int] = {}
    for status, in_week, in_day in (await session.execute(statement)).all():
        week[status] = int(in_week)
        if in_day:
            today[status] = int(in_day)
    return StatusCounts(today=today, week=week)


@dataclass(frozen=True)
class Flagged:
    """One "needs attention" flag: how many orders carry it, and the order list's query
    that shows exactly those orders."""

    flag: Attention
    count: int
    query: str


async def attention_counts(session: AsyncSession, store_id: str) -> list[Flagged]:
    """Counts by the order list's definitions (``listing.Attention``), each one indexed
    query, with the list query that shows the same orders. A pending review counts while
    the order is ``RECEIVED``: only then can it still be decided (``processing.reviews``),
    and ``(store_id, status, id)`` finds those orders without reading the store's others."""
    push_failed = (
        select(func.count())
        .select_from(Order)
        .where(Order.store_id == store_id, Order.push_status == "failed")
    )
    review = (
        select(func.count())
        .select_from(Order)
        .where(
            Order.store_id == store_id,
            Order.status == OrderStatus.RECEIVED.value,
            Order.review_status == "pending",
        )
    )
    refund_failed = select(func.count(distinct(Refund.order_id))).where(
        Refund.store_id == store_id, Refund.status == "failed"
    )
    return [
        Flagged(Attention.PUSH_FAILED, await _count(session, push_failed), "attention=push_failed"),
        Flagged(
            Attention.REVIEW,
            await _count(session, review),
            f"attention=review&status={OrderStatus.RECEIVED.value}",
        ),
        Flagged(
            Attention.REFUND_FAILED, await _count(session, refund_failed), "attention=refund_failed"
        ),
    ]


async def _count(session: AsyncSession, statement: Select[int]) -> int:
    return int(await session.scalar(statement) or 0)
