"""Counts for the Merchant Account dashboard: how many of a store's orders were received in
a period, by their status now (one grouped query over the ``(store_id, created_at)``
range the order list's date filter uses), and how many need attention."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import Order
from orderbridge.orders.listing import Attention, ListFilter, list_page
from orderbridge.orders.queries import OrderFilter


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
    """Both periods in one pass over the longer one (a week starts on or before its day)."""
    since = min(day_start, week_start)
    statement = (
        select(
            Order.status,
            func.count(),
            func.sum(case((Order.created_at >= day_start, 1), else_=0)),
        )
        .where(Order.store_id == store_id, Order.created_at >= since)
        .group_by(Order.status)
    )
    today: dict[str, int] = {}
    week: dict[str, int] = {}
    for status, in_week, in_day in (await session.execute(statement)).all():
        week[status] = int(in_week)
        if in_day:
            today[status] = int(in_day)
    return StatusCounts(today=today, week=week)


async def attention_counts(
    session: AsyncSession, store_id: str, *, cap: int = 1000
) -> dict[Attention, int]:
    """How many orders carry each "needs attention" flag, by the order list's own
    definitions (``listing.list_page``), counted up to ``cap``: the dashboard shows "1000+"
    rather than counting a whole backlog."""
    counts: dict[Attention, int] = {}
    for flag in Attention:
        flagged = ListFilter(OrderFilter(store_id=store_id), attention=(flag,))
        counts[flag] = len((await list_page(session, flagged, limit=cap)).rows)
    return counts
