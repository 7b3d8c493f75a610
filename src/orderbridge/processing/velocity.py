"""Counting earlier orders for fraud velocity rules: the only SQL screening needs, as one
query whatever the number of rules (one ``count(*)`` subquery per rule, on an index range),
and one for a whole batch of orders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    Executable,
    Integer,
    Select,
    TextClause,
    bindparam,
    func,
    select,
    text,
    union_all,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import ScalarSelect

from orderbridge.db.database import dialect_of
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


# The most orders counted by one statement (a UNION ALL of one count per order).
CHUNK = 32


def _part(keys: tuple[CountKey, ...], email_history: bool, n: int) -> Select[*tuple[Any, ...]]:
    """One order's counts, its values bound as ``value_<i>_<n>``, ``since_<i>_<n>``...,
    and ``n`` itself as the last column, to find its row in a UNION.

    One ``count(*)`` subquery per count, each a range of the index on (store, value,
    created_at): a single scan with the conditions OR-ed together let SQLite walk every
    earlier order of the store instead, for every order."""
    created_at = Order.created_at
    mine = (
        Order.store_id == bindparam(f"store_id_{n}", type_=Order.store_id.type),
        Order.id != bindparam(f"order_id_{n}", type_=Order.id.type),
        created_at <= bindparam(f"created_at_{n}", type_=created_at.type),
    )
    counts: list[ScalarSelect[int]] = []
    for index, key in enumerate(keys):
        column = _COLUMN[key.dimension]
        counts.append(
            select(func.count())
            .where(
                *mine,
                column == bindparam(f"value_{index}_{n}", type_=column.type),
                created_at >= bindparam(f"since_{index}_{n}", type_=created_at.type),
            )
            .scalar_subquery()
        )
    if email_history:
        email = Order.email_key == bindparam(f"email_{n}", type_=Order.email_key.type)
        counts.append(select(func.count()).where(*mine, email).scalar_subquery())
    return select(*counts, bindparam(f"n_{n}", type_=Integer))


@lru_cache(maxsize=256)
def _statement(keys: tuple[CountKey, ...], email_history: bool, orders: int) -> Executable:
    """The counting query for ``orders`` orders needing these counts, built once: only the
    values change (building it anew cost as much CPU as running it)."""
    parts = [_part(keys, email_history, n) for n in range(orders)]
    return parts[0] if orders == 1 else union_all(*parts)


_COLUMN_NAME = {dimension: column.key for dimension, column in _COLUMN.items()}


@lru_cache(maxsize=64)
def _postgresql_statement(keys: tuple[CountKey, ...], email_history: bool) -> TextClause:
    """The counts of any number of orders on PostgreSQL: the orders' values as arrays,
    unnested into rows, each count a subquery (the same as ``_part``'s). One short text for
    any batch: psycopg parses it once and the server prepares it, where a UNION of 32
    parts (tens of KB) would be parsed on every call."""
    arrays = [
        ("n", "int"),
        ("store_id", "text"),
        ("order_id", "bigint"),
        ("created_at", "timestamptz"),
    ]
    # The time bounds compare an expression, not the column: they filter the few orders
    # found by (store, value), never choose the index. Planned without fresh statistics (a
    # table growing fast between two autovacuum runs), a bound on the column itself made
    # PostgreSQL walk the (store, created_at) index over every order of the window for
    # each count instead: 5 ms a count at 20,000 orders, quadratic in the store's orders.
    created_at = "(o.created_at + interval '0 seconds')"
    mine = f"o.store_id = t.store_id AND o.id <> t.order_id AND {created_at} <= t.created_at"
    counts = []
    for index, key in enumerate(keys):
        arrays += [(f"value_{index}", "text"), (f"since_{index}", "timestamptz")]
        counts.append(
            f"(SELECT count(*) FROM orders AS o WHERE {mine}"
            f" AND o.{_COLUMN_NAME[key.dimension]} = t.value_{index}"
            f" AND {created_at} >= t.since_{index})"
        )
    if email_history:
        arrays.append(("email", "text"))
        counts.append(f"(SELECT count(*) FROM orders AS o WHERE {mine} AND o.email_key = t.email)")
    unnested = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in arrays)
    names = ", ".join(name for name, _ in arrays)
    return text(f"SELECT {', '.join(counts)}, t.n FROM unnest({unnested}) AS t({names})")


Members = list[tuple[int, dict[str, Any]]]  # (the question's index, its values)


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
    """``count_velocity`` for several orders, in their order: one statement for the orders
    that need the same counts (on SQLite a UNION ALL of up to ``CHUNK`` of them).

    Run through the ORM session on purpose: its autoflush writes the card facts that the
    payment step found for the orders of a batch before they are counted."""
    answers: list[VelocityCounts | None] = [None] * len(questions)
    groups: dict[tuple[tuple[CountKey, ...], bool], Members] = {}
    for index, question in enumerate(questions):
        keys, values = _values(question)
        if not keys and not question.needed.email_history:
            answers[index] = VelocityCounts(recent={}, email_orders_ever=None)
            continue
        groups.setdefault((keys, question.needed.email_history), []).append((index, values))
    count = _count_postgresql if dialect_of(session) == "postgresql" else _count_sqlite
    for (keys, email_history), members in groups.items():
        for index, counts in await count(session, keys, email_history, members):
            answers[index] = counts
    assert all(answer is not None for answer in answers)
    return cast(list[VelocityCounts], answers)


async def _count_postgresql(
    session: AsyncSession, keys: tuple[CountKey, ...], email_history: bool, members: Members
) -> list[tuple[int, VelocityCounts]]:
    arrays = {name: [values[name] for _, values in members] for name in members[0][1]}
    arrays["n"] = list(range(len(members)))
    rows = await session.execute(_postgresql_statement(keys, email_history), arrays)
    return [(members[row[-1]][0], _answer(row, keys, email_history)) for row in rows.all()]


async def _count_sqlite(
    session: AsyncSession, keys: tuple[CountKey, ...], email_history: bool, members: Members
) -> list[tuple[int, VelocityCounts]]:
    found = []
    for start in range(0, len(members), CHUNK):
        chunk = members[start : start + CHUNK]
        parameters: dict[str, Any] = {}
        for n, (_, values) in enumerate(chunk):
            parameters.update({f"{name}_{n}": value for name, value in values.items()})
            parameters[f"n_{n}"] = n
        rows = await session.execute(_statement(keys, email_history, len(chunk)), parameters)
        found += [(chunk[row[-1]][0], _answer(row, keys, email_history)) for row in rows.all()]
    return found


def _answer(row: Row[Any], keys: tuple[CountKey, ...], email_history: bool) -> VelocityCounts:
    return VelocityCounts(
        recent={key: int(row[i]) for i, key in enumerate(keys)},
        email_orders_ever=int(row[len(keys)]) if email_history else None,
    )


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
