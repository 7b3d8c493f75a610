"""Order use cases. Each runs inside the caller's transaction: load, decide with the pure
lifecycle, write the new state, its event and its follow-up jobs. Nothing here commits or
talks to the outside world."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.clock import Clock
from orderbridge.db.database import wake_after_commit
from orderbridge.db.models import Order
from orderbridge.errors import IdempotencyKeyReused, NotFound, ValidationFailed
from orderbridge.events.recorder import EventRecorder, NewEvent
from orderbridge.ids import parse_order_id
from orderbridge.jobs import queue
from orderbridge.money import ZERO
from orderbridge.orders import intake_sql
from orderbridge.orders.arithmetic import check_order_sums
from orderbridge.orders.document import build_document
from orderbridge.orders.lifecycle import (
    Actor,
    ActorKind,
    CancellationReason,
    OrderStatus,
    StatusChange,
    change_status,
)
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.screening.facts import address_key, normalise_email, parse_ip

PROCESS_ORDER = "order.process"
FINALISE_ORDER = "order.finalise"
RELEASE_PAYMENT = "payment.release"

# The background work a status sets off, enqueued in the same transaction.
FOLLOW_UP_JOBS: dict[OrderStatus, tuple[str, ...]] = {
    OrderStatus.RECEIVED: (PROCESS_ORDER,),
    OrderStatus.ACCEPTED: (FINALISE_ORDER,),
    OrderStatus.CANCELLED: (RELEASE_PAYMENT,),
}


@dataclass(frozen=True)
class Outcome:
    order: Order
    changed: bool  # False when the call repeated one already applied (idempotent replay)


# Something that must happen in the transaction of every status change, beside the
# follow-up jobs: plug & play starts its push when an order of a connected store is READY.
StatusHook = Callable[[AsyncSession, str, int, StatusChange], Awaitable[None]]


def velocity_keys(order: CheckoutOrder) -> dict[str, str | None]:
    """The values fraud velocity rules count orders by, kept in indexed columns."""
    ip = None
    if order.client.ip is not None:
        address = parse_ip(str(order.client.ip))
        if isinstance(address, IPv6Address):
            ip = str(IPv6Network((address, 64), strict=False))  # a subscriber's whole /64
        else:
            ip = str(address)
    return {
        "email_key": normalise_email(order.customer.email),
        "client_ip": ip,
        "address_key": address_key(order.shipping_address.model_dump()),
    }


def status_event(
    store_id: str, order_id: int, change: StatusChange, *, external: tuple[str | None, str | None]
) -> NewEvent:
    """The event (and audit entry) of a status change."""
    return NewEvent(
        store_id=store_id,
        name=change.event_name,
        at=change.at,
        actor=change.actor,
        order_id=order_id,
        external_order_id=external[0],
        external_order_number=external[1],
        from_status=change.from_status.value if change.from_status else None,
        to_status=change.to_status.value,
        reason=change.reason.value if change.reason else None,
        note=change.note,
    )


def request_hash(order: CheckoutOrder) -> str:
    canonical = orjson.dumps(order.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


class OrderService:
    def __init__(self, clock: Clock, recorder: EventRecorder) -> None:
        self.clock = clock
        self.recorder = recorder
        self.hooks: list[StatusHook] = []

    # ---- intake ---------------------------------------------------------------------------

    async def receive(
        self, session: AsyncSession, store_id: str, idempotency_key: str, order: CheckoutOrder
    ) -> Outcome:
        """Store a checkout's order as RECEIVED with its event and its processing job. A
        repeat with the same key returns the stored order and writes nothing."""
        errors = check_order_sums(order)
        if errors:
            raise ValidationFailed(errors)
        digest = request_hash(order)
        now = self.clock.now()
        change = change_status(None, OrderStatus.RECEIVED, Actor.system("checkout"), now)
        values: dict[str, Any] = {
            "store_id": store_id,
            "status": change.to_status.value,
            "idempotency_key": idempotency_key,
            "request_hash": digest,
            "environment": order.environment,
            "currency": order.currency,
            "total": order.totals.total,
            "customer_email": order.customer.email.lower(),
            "customer_name": f"{order.customer.first_name} {order.customer.last_name}",
            "shipping_country": order.shipping_address.country,
            "payment_status": "pending",
            **velocity_keys(order),
            "authorized": ZERO,
            "captured": ZERO,
            "refunded": ZERO,
            "created_at": now,
            "updated_at": now,
            "document": build_document(order),
        }
        order_id = await self._insert_received(session, values, change)
        if order_id is None:
            # The key was used before (or concurrently: PostgreSQL waited for that
            # transaction to commit before reporting the conflict).
            existing = await self._by_idempotency_key(session, store_id, idempotency_key)
            if existing.request_hash != digest:
                raise IdempotencyKeyReused("this idempotency key was used for a different order")
            return Outcome(existing, changed=False)
        # The row as inserted; built rather than read back, to spare the round trip.
        return Outcome(Order(id=order_id, **values), changed=True)

    async def _insert_received(
        self, session: AsyncSession, values: dict[str, Any], change: StatusChange
    ) -> int | None:
        """The order with what every status change writes (its event, the event's
        deliveries, the follow-up jobs, the status hooks), its rows written by
        orders.intake_sql. None when the idempotency key is taken."""
        written = await intake_sql.insert_received(
            session,
            values,
            event_name=change.event_name,
            event_pos=self.recorder.next_pos(session),
            actor_kind=change.actor.kind.value,
            actor_id=change.actor.id,
            job_kinds=FOLLOW_UP_JOBS[OrderStatus.RECEIVED],
            job_status=queue.JobStatus.QUEUED.value,
            job_max_attempts=queue.DEFAULT_MAX_ATTEMPTS,
        )
        if written is None:
            return None
        store_id = values["store_id"]
        wake_after_commit(session, "jobs")
        if written.deliveries:
            wake_after_commit(session, "webhooks")
        event = status_event(store_id, written.order_id, change, external=(None, None))
        await self.recorder.inserted(
            session, event, written.event_id, done=intake_sql.LISTENERS_DONE
        )
        for hook in self.hooks:
            await hook(session, store_id, written.order_id, change)
        return written.order_id

    # ---- merchant actions -----------------------------------------------------------------

    async def accept(
        self,
        session: AsyncSession,
        store_id: str,
        public_id: str,
        *,
        external_order_id: str,
        external_order_number: str,
        actor: Actor,
    ) -> Outcome:
        order = await self.load(session, store_id, public_id, for_update=True)
        external = (external_order_id, external_order_number)
        if order.status in (OrderStatus.ACCEPTED, OrderStatus.COMPLETED) and external == (
            order.external_order_id,
            order.external_order_number,
        ):
            return Outcome(order, changed=False)
        change = change_status(
            OrderStatus(order.status), OrderStatus.ACCEPTED, actor, self.clock.now()
        )
        order.external_order_id, order.external_order_number = external
        await self.apply(session, order, change)
        return Outcome(order, changed=True)

    async def cancel(
        self,
        session: AsyncSession,
        store_id: str,
        public_id: str,
        *,
        reason: CancellationReason,
        note: str | None,
        actor: Actor,
    ) -> Outcome:
        order = await self.load(session, store_id, public_id, for_update=True)
        if order.status == OrderStatus.CANCELLED:
            return Outcome(order, changed=False)
        change = change_status(
            OrderStatus(order.status),
            OrderStatus.CANCELLED,
            actor,
            self.clock.now(),
            reason=reason,
            note=note,
        )
        await self.apply(session, order, change)
        return Outcome(order, changed=True)

    # ---- background steps -----------------------------------------------------------------

    async def finalise(self, session: AsyncSession, order_id: int) -> None:
        """ACCEPTED → COMPLETED."""
        order = await session.get(Order, order_id, with_for_update=True)
        if order is None or order.status != OrderStatus.ACCEPTED:
            return
        change = change_status(
            OrderStatus.ACCEPTED,
            OrderStatus.COMPLETED,
            Actor.system("finalisation"),
            self.clock.now(),
        )
        await self.apply(session, order, change)

    # ---- reading --------------------------------------------------------------------------

    async def load(
        self, session: AsyncSession, store_id: str, public_id: str, *, for_update: bool = False
    ) -> Order:
        parsed = parse_order_id(public_id)
        if parsed is None or parsed[0] != store_id:
            raise NotFound(f"no order {public_id}", code="order_not_found")
        statement = select(Order).where(Order.id == parsed[1], Order.store_id == store_id)
        if for_update:
            statement = statement.with_for_update()
        order = await session.scalar(statement)
        if order is None:
            raise NotFound(f"no order {public_id}", code="order_not_found")
        return order

    async def _by_idempotency_key(self, session: AsyncSession, store_id: str, key: str) -> Order:
        order = await session.scalar(
            select(Order).where(Order.store_id == store_id, Order.idempotency_key == key)
        )
        assert order is not None, "a conflicting insert implies a stored order"
        return order

    # ---- writing a change -----------------------------------------------------------------

    async def apply(self, session: AsyncSession, order: Order, change: StatusChange) -> None:
        """Write a checked status change: the order's columns, its event (the audit entry)
        and the follow-up jobs of the new status."""
        await self.apply_many(session, [(order, change)])

    async def apply_many(
        self, session: AsyncSession, changes: list[tuple[Order, StatusChange]]
    ) -> None:
        """``apply`` for several orders in one transaction (the worker's batches): the
        orders' columns in one flush (the ORM writes rows changed alike with one
        executemany), then each change's event, follow-up jobs and status hooks, in the
        order given."""
        if not changes:
            return
        for order, change in changes:
            _set_status(order, change)
        await session.flush()
        events = [
            status_event(order.store_id, order.id, change, external=_external(order))
            for order, change in changes
        ]
        await self.recorder.record_many(session, events)
        for order, change in changes:
            await self._follow_up(session, order.store_id, order.id, change)

    async def _follow_up(
        self, session: AsyncSession, store_id: str, order_id: int, change: StatusChange
    ) -> None:
        """The follow-up jobs of the new status and the status hooks."""
        for kind in FOLLOW_UP_JOBS.get(change.to_status, ()):
            await queue.enqueue(session, kind, now=change.at, order_id=order_id)
        for hook in self.hooks:
            await hook(session, store_id, order_id, change)


def _external(order: Order) -> tuple[str | None, str | None]:
    return order.external_order_id, order.external_order_number


def _set_status(order: Order, change: StatusChange) -> None:
    order.status = change.to_status.value
    order.updated_at = change.at
    if change.to_status is OrderStatus.CANCELLED:
        order.cancel_reason = change.reason.value if change.reason else None
        order.cancelled_by = (
            ActorKind.MERCHANT.value
            if change.actor.kind is ActorKind.MERCHANT
            else ActorKind.SYSTEM.value
        )
        order.cancel_note = change.note
        order.cancelled_at = change.at
