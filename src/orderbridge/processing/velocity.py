"""Counting earlier orders for fraud velocity rules: the only SQL screening needs."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import Order
from orderbridge.screening.facts import OrderFacts
from orderbridge.screening.fraud import (
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


async def count_velocity(
    session: AsyncSession, order: Order, facts: OrderFacts, needed: CountsNeeded
) -> VelocityCounts:
    recent = {}
    for key in needed.windows:
        value = velocity_value(facts, key.dimension)
        if value is None:
            continue  # no such fact: the rule is skipped, not counted as zero
        column = _COLUMN[key.dimension]
        recent[key] = int(
            await session.scalar(
                select(func.count())
                .select_from(Order)
                .where(
                    Order.store_id == order.store_id,
                    column == value,
                    Order.id != order.id,
                    Order.created_at >= order.created_at - key.window,
                    Order.created_at <= order.created_at,
                )
            )
            or 0
        )
    ever = None
    if needed.email_history:
        ever = int(
            await session.scalar(
                select(func.count())
                .select_from(Order)
                .where(
                    Order.store_id == order.store_id,
                    Order.email_key == facts.email,
                    Order.id != order.id,
                    Order.created_at <= order.created_at,
                )
            )
            or 0
        )
    return VelocityCounts(recent=recent, email_orders_ever=ever)
