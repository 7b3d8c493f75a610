"""Counting earlier orders for fraud velocity rules: the only SQL screening needs, as one
query whatever the number of rules (one conditional count per rule)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Executable,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    union_all,
)
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


# The most orders counted by one statement (a UNION ALL of one count per order).
CHUNK = 32


def _part(keys: tuple[CountKey, ...], email_history: bool, n: int) -> Select[*tuple[Any, ...]]:
    """One order's counts, its values bound as ``value_<i>_<n>``, ``since_<i>_<n>``...,
    and ``n`` itself as the last column, to find its row in a UNION."""
    counts: list[ColumnElement[int]] = []
    matches: list[ColumnElement[bool]] = []
    created_at = Order.created_at
    for index, key in enumerate(keys):
        column = _COLUMN[key.dimension]
        match = and_(
            column == bindparam(f"value_{index}_{n}", type_=column.type),
            created_at >= bindparam(f"since_{index}_{n}", type_=created_at.type),
        )
        counts.append(_count(match))
        matches.append(match)
    if email_history:
        ever = Order.email_key == bindparam(f"email_{n}", type_=Order.email_key.type)
        counts.append(_count(ever))
        matches.append(ever)
    return select(*counts, bindparam(f"n_{n}", type_=Integer)).where(
        Order.store_id == bindparam(f"store_id_{n}", type_=Order.store_id.type),
        Order.id != bindparam(f"order_id_{n}", type_=Order.id.type),
        created_at <= bindparam(f"created_at_{n}", type_=created_at.type),
        or_(*matches),
    )


@lru_cache(maxsize=256)
def _statement(keys: tuple[CountKey, ...], email_history: bool, orders: int) -> Executable:
    """The counting query for ``orders`` orders needing these counts, built once: only the
    values change (building it anew cost as much CPU as running it)."""
    parts = [_part(keys, email_history, n) for n in range(orders)]
    return parts[0] if orders == 1 else union_all(*parts)


@dataclass(frozen=True)
class VelocityQuestion:
    order: Order
    facts: OrderFacts
    needed: CountsNeeded


async def count_velocity(
    session: AsyncSession, order: Order, facts: OrderFacts, needed: CountsNeeded
) -> VelocityCounts:
    """Earlier orders of the store sharing each value within each window (this order not
    counted), and how many the email ever placed. A missing fact is not counted."""
    (counts,) = await count_velocity_many(session, [VelocityQuestion(order, facts, needed)])
    return counts


async def count_velocity_many(
    session: AsyncSession, questions: Sequence[VelocityQuestion]
) -> list[VelocityCounts]:
    """``count_velocity`` for several orders, in their order: one statement for up to
    ``CHUNK`` orders that need the same counts.

    Run through the ORM session on purpose: its autoflush writes the card facts that the
    payment step found for the orders of a batch before they are counted."""
    answers: list[VelocityCounts | None] = [None] * len(questions)
    groups: dict[tuple[tuple[CountKey, ...], bool], list[tuple[int, dict[str, Any]]]] = {}
    for index, question in enumerate(questions):
        keys, values = _values(question)
        if not keys and not question.needed.email_history:
            answers[index] = VelocityCounts(recent={}, email_orders_ever=None)
            continue
        groups.setdefault((keys, question.needed.email_history), []).append((index, values))
    for (keys, email_history), members in groups.items():
        for start in range(0, len(members), CHUNK):
            chunk = members[start : start + CHUNK]
            parameters: dict[str, Any] = {}
            for n, (_, values) in enumerate(chunk):
                parameters.update({f"{name}_{n}": value for name, value in values.items()})
                parameters[f"n_{n}"] = n
            statement = _statement(keys, email_history, len(chunk))
            for row in (await session.execute(statement, parameters)).all():
                index = chunk[row[-1]][0]
                answers[index] = VelocityCounts(
                    recent={key: int(row[i]) for i, key in enumerate(keys)},
                    email_orders_ever=int(row[len(keys)]) if email_history else None,
                )
    assert all(answer is not None for answer in answers)
    return cast(list[VelocityCounts], answers)


def _values(question: VelocityQuestion) -> tuple[tuple[CountKey, ...], dict[str, Any]]:
    """The counts this order can have (a missing fact is skipped, not counted as zero)
    and the values they compare with."""
    order, facts, needed = question.order, question.facts, question.needed
    keys: list[CountKey] = []
    values: dict[str, Any] = {
        "store_id": order.store_id,
        "order_id": order.id,
        "created_at": order.created_at,
    }
    for key in needed.windows:
        value = velocity_value(facts, key.dimension)
        if value is None:
            continue
        values[f"value_{len(keys)}"] = value
        values[f"since_{len(keys)}"] = order.created_at - key.window
        keys.append(key)
    if needed.email_history:
        values["email"] = facts.email
    return tuple(keys), values
