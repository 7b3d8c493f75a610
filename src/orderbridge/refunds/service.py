"""Merchant refunds of completed orders (contract §4).

``create`` runs in the request's transaction with the order locked: it decides the amount,
reserves it by inserting the refund as ``pending``, and in the same transaction records
``refund.created`` and enqueues ``refund.execute``. Locking the order serialises the
refunds of one order, so concurrent requests can never together exceed the capture: each
sees what the previous ones reserved.

``execute`` (the job) asks the provider, keyed by the refund id: a run repeated after a
crash, a lost lease or ``ProviderUnavailable`` repeats the same refund at the provider and
never makes a second one. The row is re-read under a lock and a refund that is no longer
pending is left alone.

What may still be refunded = captured − refunded − every pending refund of the order
(cancellation releases included). A failed refund reserves nothing.

Amounts of item refunds: a line's ``total`` (after discount, with tax and duty) is shared
over its units, rounded in the currency, so that the units of a line always add up to its
total exactly: refunding ``q`` more units of a line of ``Q`` units of which ``p`` were
refunded before gives ``round(total × (p+q) / Q) − round(total × p / Q)``. Shipping is its
price plus its tax, refundable once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.clock import Clock
from orderbridge.db.models import Order, Refund
from orderbridge.errors import Conflict, FieldError, IdempotencyKeyReused, ValidationFailed
from orderbridge.events.recorder import EventRecorder, NewEvent
from orderbridge.ids import random_token
from orderbridge.jobs import queue
from orderbridge.jobs.queue import ClaimedJob
from orderbridge.jobs.worker import JobHandler, PermanentJobError
from orderbridge.money import ZERO, fits_currency, format_amount, normalize
from orderbridge.orders.lifecycle import Actor, OrderStatus
from orderbridge.orders.service import OrderService
from orderbridge.payments.port import PaymentRejected, RefundStatus
from orderbridge.payments.registry import PaymentProviders
from orderbridge.refunds.schemas import RefundRequest

EXECUTE_REFUND = "refund.execute"
MERCHANT_REFUND = "refund"
# A refund the provider accepted but has not paid out yet is asked about again (with the
# same key, which returns the same refund) after this long.
PENDING_RECHECK = timedelta(minutes=30)
_OPEN = (RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value)


class OrderNotCompleted(Conflict):
    code, title = "order_not_completed", "Only a completed order can be refunded"


class RefundExceedsCaptured(Conflict):
    code, title = "refund_exceeds_captured", "The refund exceeds what is left of the capture"


@dataclass(frozen=True)
class RefundOutcome:
    refund: Refund
    created: bool  # False for an idempotent repeat


@dataclass(frozen=True)
class _Decision:
    amount: Decimal
    items: list[dict[str, Any]]
    shipping: bool


class RefundService:
    def __init__(
        self,
        clock: Clock,
        recorder: EventRecorder,
        providers: PaymentProviders,
        orders: OrderService,
    ) -> None:
        self.clock = clock
        self.recorder = recorder
        self.providers = providers
        self.orders = orders

    # ---- the merchant's request -----------------------------------------------------------

    async def create(
        self,
        session: AsyncSession,
        store_id: str,
        order_id: str,
        request: RefundRequest,
        idempotency_key: str | None,
        actor: Actor,
    ) -> RefundOutcome:
        """Reserve and start a refund. Without ``idempotency_key`` every call is a new one."""
        order = await self.orders.load(session, store_id, order_id, for_update=True)
        canonical = request.canonical()
        if idempotency_key is not None:
            earlier = await session.scalar(
                select(Refund).where(
                    Refund.order_id == order.id, Refund.idempotency_key == idempotency_key
                )
            )
            if earlier is not None:
                if (
                    earlier.kind != MERCHANT_REFUND
                    or (earlier.items or {}).get("request") != canonical
                ):
                    raise IdempotencyKeyReused(
                        "this idempotency key was used for a different refund"
                    )
                return RefundOutcome(earlier, created=False)
        if order.status != OrderStatus.COMPLETED:
            raise OrderNotCompleted(
                f"the order is {order.status}; only COMPLETED orders are refunded"
                + (" (cancel it instead)" if order.status != OrderStatus.CANCELLED else "")
            )
        refunds = await self.list(session, order)
        decision = _decide(order, request, refunds)
        reserved = sum((r.amount for r in refunds if r.status == RefundStatus.PENDING.value), ZERO)
        available = order.captured - order.refunded - reserved
        if decision.amount > available:
            cur = order.currency
            raise RefundExceedsCaptured(
                f"a refund of {format_amount(decision.amount, cur)} {cur} exceeds the "
                f"{format_amount(max(available, ZERO), cur)} {cur} still refundable "
                f"(captured {format_amount(order.captured, cur)}, refunded "
                f"{format_amount(order.refunded, cur)}, pending {format_amount(reserved, cur)})"
            )
        now = self.clock.now()
        refund_id = "rf_" + random_token(12)
        refund = Refund(
            id=refund_id,
            order_id=order.id,
            store_id=order.store_id,
            kind=MERCHANT_REFUND,
            operation="refund",
            amount=decision.amount,
            currency=order.currency,
            status=RefundStatus.PENDING.value,
            reason=request.reason,
            items={"request": canonical, "items": decision.items, "shipping": decision.shipping},
            idempotency_key=idempotency_key or refund_id,
            created_at=now,
            updated_at=now,
        )
        session.add(refund)
        await session.flush()
        await self._record(session, order, refund, "refund.created", actor, now)
        await queue.enqueue(
            session, EXECUTE_REFUND, now=now, order_id=order.id, payload={"refund_id": refund_id}
        )
        return RefundOutcome(refund, created=True)

    # ---- the job ------------------------------------------------------------------------

    async def execute(self, session: AsyncSession, refund_id: str) -> datetime | None:
        """Send a pending refund to the provider. Returns when to ask again if the provider
        has accepted it without paying out yet."""
        refund = await session.scalar(
            select(Refund)
            .where(Refund.id == refund_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if refund is None or refund.kind != MERCHANT_REFUND:
            return None
        if refund.status != RefundStatus.PENDING.value:
            return None  # done before: never twice
        order = await session.get(Order, refund.order_id)
        assert order is not None, "a refund belongs to an order"
        payment = order.document["payment"]
        try:
            provider = self.providers.get(payment["provider"], environment=order.environment)
            outcome = await provider.refund(
                payment["reference"],
                amount=refund.amount,
                currency=refund.currency,
                idempotency_key=refund.id,
            )
        except PaymentRejected as rejected:
            await self._finish(session, refund, failure=f"{rejected.code}: {rejected.message}")
            return None
        # ProviderUnavailable propagates: the job runs again later with the same key.
        refund.provider_reference = outcome.refund_id
        if outcome.status is RefundStatus.FAILED:
            await self._finish(
                session, refund, failure=outcome.failure_reason or "the provider gave up"
            )
            return None
        if outcome.status is RefundStatus.PENDING:
            refund.updated_at = self.clock.now()
            return self.clock.now() + PENDING_RECHECK
        await self._finish(session, refund, failure=None)
        return None

    async def _finish(self, session: AsyncSession, refund: Refund, *, failure: str | None) -> None:
        # The order is locked only now, not during the provider call, so that new refund
        # requests of the order do not wait for the provider.
        order = await session.scalar(
            select(Order)
            .where(Order.id == refund.order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert order is not None
        now = self.clock.now()
        refund.status = (RefundStatus.FAILED if failure else RefundStatus.SUCCEEDED).value
        refund.failure_reason = failure
        refund.updated_at = refund.completed_at = now
        if failure is None:
            order.refunded += refund.amount
            if order.refunded >= order.captured:
                order.payment_status = "refunded"
            order.updated_at = now
        await session.flush()
        name = "refund.failed" if failure else "refund.completed"
        await self._record(session, order, refund, name, Actor.system("refund"), now)

    # ---- reading --------------------------------------------------------------------------

    async def list(self, session: AsyncSession, order: Order) -> list[Refund]:
        """The order's refunds and cancellation releases, oldest first."""
        return (await refunds_by_order(session, [order.id])).get(order.id, [])

    async def _record(
        self,
        session: AsyncSession,
        order: Order,
        refund: Refund,
        name: str,
        actor: Actor,
        at: datetime,
    ) -> None:
        await self.recorder.record(
            session,
            NewEvent(
                store_id=order.store_id,
                name=name,
                at=at,
                actor=actor,
                order_id=order.id,
                entity_id=refund.id,
                external_order_id=order.external_order_id,
                external_order_number=order.external_order_number,
                note=refund.failure_reason if name == "refund.failed" else refund.reason,
            ),
        )


async def refunds_by_order(
    session: AsyncSession, order_ids: Iterable[int]
) -> dict[int, list[Refund]]:
    """The refunds of several orders in one query (a page of orders), oldest first."""
    ids = list(order_ids)
    found: dict[int, list[Refund]] = {}
    if not ids:
        return found
    rows = await session.scalars(
        select(Refund).where(Refund.order_id.in_(ids)).order_by(Refund.created_at, Refund.id)
    )
    for refund in rows:
        found.setdefault(refund.order_id, []).append(refund)
    return found


async def refunded_total(session: AsyncSession, order_id: int) -> Decimal:
    """Succeeded refunds of an order, summed from the rows (``order.refunded`` must agree)."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Refund.amount), 0)).where(
            Refund.order_id == order_id, Refund.status == RefundStatus.SUCCEEDED.value
        )
    )
    return Decimal(total or 0)


# ---- the amount: pure -----------------------------------------------------------------------


def _decide(order: Order, request: RefundRequest, earlier: Sequence[Refund]) -> _Decision:
    cur = order.currency
    if request.amount is not None:
        if not fits_currency(request.amount, cur):
            raise _invalid("amount", f"{cur} amounts have at most the currency's decimals")
        if request.amount <= ZERO:
            raise _invalid("amount", "a refund must be more than zero", "too_small")
        return _Decision(normalize(request.amount, cur), [], False)

    taken: dict[str, int] = {}
    shipping_taken = False
    for refund in earlier:
        if refund.kind != MERCHANT_REFUND or refund.status not in _OPEN:
            continue
        for line in (refund.items or {}).get("items", []):
            taken[line["item_id"]] = taken.get(line["item_id"], 0) + int(line["quantity"])
        shipping_taken = shipping_taken or bool((refund.items or {}).get("shipping"))

    ordered = {item["id"]: item for item in order.document["items"]}
    errors: list[FieldError] = []
    lines: list[dict[str, Any]] = []
    total = ZERO
    for index, wanted in enumerate(request.items or []):
        item = ordered.get(wanted.item_id)
        if item is None:
            errors.append(FieldError(f"items.{index}.item_id", "no such item in the order"))
            continue
        before, quantity = taken.get(wanted.item_id, 0), int(item["quantity"])
        left = quantity - before
        if wanted.quantity > left:
            errors.append(
                FieldError(
                    f"items.{index}.quantity",
                    f"{left} of {quantity} left to refund",
                    "quantity_exceeds_refundable",
                )
            )
            continue
        amount = item_share(Decimal(item["total"]), quantity, before, wanted.quantity, cur)
        lines.append(
            {
                "item_id": wanted.item_id,
                "quantity": wanted.quantity,
                "amount": format_amount(amount, cur),
            }
        )
        total += amount
    if request.shipping:
        if shipping_taken:
            errors.append(FieldError("shipping", "the shipping was refunded before", "refunded"))
        else:
            shipping = order.document["shipping"]
            total += Decimal(shipping["price"]) + Decimal(shipping["tax"])
    if errors:
        raise ValidationFailed(errors)
    if total <= ZERO:
        raise _invalid("body", "nothing to refund: the refund comes to zero", "too_small")
    return _Decision(normalize(total, cur), lines, bool(request.shipping))


def item_share(total: Decimal, quantity: int, before: int, more: int, currency: str) -> Decimal:
    """The part of a line's ``total`` that ``more`` units are worth after ``before`` units were
    refunded: cumulative shares rounded in the currency, so that all units add up exactly."""
    upto = normalize(total * (before + more) / quantity, currency)
    return upto - normalize(total * before / quantity, currency)


def _invalid(path: str, message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed([FieldError(path, message, code)])


# ---- the job's registration ------------------------------------------------------------------


def refund_job_handlers(refunds: RefundService) -> dict[str, JobHandler]:
    async def execute(session: AsyncSession, job: ClaimedJob) -> datetime | None:
        refund_id = job.payload.get("refund_id")
        if not isinstance(refund_id, str):
            raise PermanentJobError(f"{job.kind} job without a refund id")
        return await refunds.execute(session, refund_id)

    return {EXECUTE_REFUND: execute}
