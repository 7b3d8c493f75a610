"""Counting earlier orders for fraud velocity rules: the only SQL screening needs, as one
query whatever the number of rules (one conditional count per rule)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Executable, and_, bindparam, case, func, or_, select
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


@lru_cache(maxsize=64)
def _statement(keys: tuple[CountKey, ...], email_history: bool) -> Executable:
    """The counting query for these counts, built once: only the values change per order
    (building it anew cost as much CPU as running it). Count ``i`` compares its dimension's
    column with ``value_i`` since ``since_i``."""
    counts: list[ColumnElement[int]] = []
    matches: list[ColumnElement[bool]] = []
    created_at = Order.created_at
    for index, key in enumerate(keys):
        column = _COLUMN[key.dimension]
        match = and_(
            column == bindparam(f"value_{index}", type_=column.type),
            created_at >= bindparam(f"since_{index}", type_=created_at.type),
        )
        counts.append(_count(match))
        matches.append(match)
    if email_history:
        ever = Order.email_key == bindparam("email", type_=Order.email_key.type)
        counts.append(_count(ever))
        matches.append(ever)
    return select(*counts).where(
        Order.store_id == bindparam("store_id", type_=Order.store_id.type),
        Order.id != bindparam("order_id", type_=Order.id.type),
        created_at <= bindparam("created_at", type_=created_at.type),
        or_(*matches),
    )


async def count_velocity(
    session: AsyncSession, order: Order, facts: OrderFacts, needed: CountsNeeded
) -> VelocityCounts:
    """Earlier orders of the store sharing each value within each window (this order not
    counted), and how many the email ever placed. A missing fact is not counted.

    Run through the ORM session on purpose: its autoflush writes the card facts that the
    payment step of this order and of the others of a batch found, before they are
    counted."""
    keys: list[CountKey] = []
    values: dict[str, Any] = {
        "store_id": order.store_id,
        "order_id": order.id,
        "created_at": order.created_at,
    }
    for key in needed.windows:
        value = velocity_value(facts, key.dimension)
        if value is None:
            continue  # no such fact: the rule is skipped, not counted as zero
        values[f"value_{len(keys)}"] = value
        values[f"since_{len(keys)}"] = order.created_at - key.window
        keys.append(key)
    if needed.email_history:
        values["email"] = facts.email
    if not keys and not needed.email_history:
        return VelocityCounts(recent={}, email_orders_ever=None)
    statement = _statement(tuple(keys), needed.email_history)
    row = (await session.execute(statement, values)).one()
    recent = {key: int(row[index]) for index, key in enumerate(keys)}
    return VelocityCounts(
        recent=recent, email_orders_ever=int(row[-1]) if needed.email_history else None
    )
