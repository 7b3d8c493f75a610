"""Read-side queries over orders: the list/search of the Order API and the timeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import Event, Order
from orderbridge.ids import parse_order_id


@dataclass(frozen=True)
class OrderFilter:
    store_id: str
    statuses: tuple[str, ...] = ()
    q: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    shipping_country: str | None = None


@dataclass(frozen=True)
class OrderPageQuery:
    """Newest first. ``after`` continues to older orders, ``before`` back to newer ones."""

    filter: OrderFilter
    after: int | None = None
    before: int | None = None
    limit: int = 20


def filter_conditions(f: OrderFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [Order.store_id == f.store_id]
    if f.statuses:
        conditions.append(Order.status.in_(f.statuses))
    if f.created_from is not None:
        conditions.append(Order.created_at >= f.created_from)
    if f.created_to is not None:
        conditions.append(Order.created_at < f.created_to)
    if f.shipping_country:
        conditions.append(Order.shipping_country == f.shipping_country)
    if f.q:
        q = f.q.strip()
        parsed = parse_order_id(q)
        if parsed is not None:
            conditions.append(Order.id == parsed[1] if parsed[0] == f.store_id else Order.id < 0)
        else:
            conditions.append(
                or_(
                    Order.external_order_number == q,
                    Order.external_order_id == q,
                    Order.customer_email == q.lower(),
                )
            )
    return conditions


async def list_orders(session: AsyncSession, query: OrderPageQuery) -> Sequence[Order]:
    conditions = filter_conditions(query.filter)
    if query.after is not None:
        conditions.append(Order.id < query.after)
    if query.before is not None:
        conditions.append(Order.id > query.before)
        statement = select(Order).where(*conditions).order_by(Order.id).limit(query.limit)
        return list(reversed((await session.scalars(statement)).all()))
    statement = select(Order).where(*conditions).order_by(Order.id.desc()).limit(query.limit)
    return (await session.scalars(statement)).all()


async def order_events(session: AsyncSession, order_id: int) -> Sequence[Event]:
    statement = (
        select(Event).where(Event.order_id == order_id).order_by(Event.occurred_at, Event.id)
    )
    return (await session.scalars(statement)).all()
