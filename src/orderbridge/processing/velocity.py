"""Counting earlier orders for fraud velocity rules: the only SQL screening needs, as one
query whatever the number of rules (one conditional count per rule)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import Order
from orderbridge.screening.facts import OrderFacts
from orderbridge.screening.fraud import (
    CountKey,
    CountsNeeded,
    VelocityCounts,
    VelocityDimension,
    velocity_value,
)

_COLUMN = {
    VelocityDimension.EMAIL: Order.email_key,
    VelocityDimension.IP: Order.client_ip,
    VelocityDimension.ADDRESS: Order.address_key,
    VelocityDimension.CARD: Order.card_fingerprint,
}


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


async def count_velocity(
    session: AsyncSession, order: Order, facts: OrderFacts, needed: CountsNeeded
) -> VelocityCounts:
    """Earlier orders of the store sharing each value within each window (this order not
    counted), and how many the email ever placed. A missing fact is not counted."""
    keys: list[CountKey] = []
    counts: list[ColumnElement[int]] = []
    matches: list[ColumnElement[bool]] = []
    for key in needed.windows:
        value = velocity_value(facts, key.dimension)
        if value is None:
            continue  # no such fact: the rule is skipped, not counted as zero
        since = order.created_at - key.window
        match = and_(_COLUMN[key.dimension] == value, Order.created_at >= since)
        keys.append(key)
        counts.append(_count(match))
        matches.append(match)
    if needed.email_history:
        ever = Order.email_key == facts.email
        counts.append(_count(ever))
        matches.append(ever)
    if not counts:
        return VelocityCounts(recent={}, email_orders_ever=None)
    row = (
        await session.execute(
            select(*counts).where(
                Order.store_id == order.store_id,
                Order.id != order.id,
                Order.created_at <= order.created_at,
                or_(*matches),
            )
        )
    ).one()
    recent = {key: int(row[index]) for index, key in enumerate(keys)}
    return VelocityCounts(
        recent=recent, email_orders_ever=int(row[-1]) if needed.email_history else None
    )
