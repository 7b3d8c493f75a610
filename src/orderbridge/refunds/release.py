"""The release of a cancelled order's money, run by the ``payment.release`` job.

One release per order (idempotency key ``cancellation``): the row is written on the first
run; the provider call is keyed by the order (``release-<id>``), so a run repeated after a
crash or a provider error repeats the same void or refund, never a second one.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.clock import Clock
from orderbridge.db.models import Order, PaymentConfirmation, Refund
from orderbridge.events.recorder import EventRecorder, NewEvent
from orderbridge.ids import random_token
from orderbridge.money import ZERO
from orderbridge.orders.lifecycle import Actor, OrderStatus
from orderbridge.payments.port import PaymentRejected, PaymentState, RefundStatus
from orderbridge.payments.registry import PaymentProviders

CANCELLATION_KEY = "cancellation"


class PaymentRelease:
    def __init__(self, clock: Clock, recorder: EventRecorder, providers: PaymentProviders) -> None:
        self.clock = clock
        self.recorder = recorder
        self.providers = providers

    async def run(self, session: AsyncSession, order_id: int) -> None:
        order = await session.get(Order, order_id, with_for_update=True)
        if order is None or order.status != OrderStatus.CANCELLED:
            return
        release = await session.scalar(
            select(Refund).where(
                Refund.order_id == order.id, Refund.idempotency_key == CANCELLATION_KEY
            )
        )
        if release is not None and release.status != RefundStatus.PENDING.value:
            return  # done before: never twice
        now = self.clock.now()
        if release is None:
            release = Refund(
                id="rf_" + random_token(12),
                order_id=order.id,
                store_id=order.store_id,
                kind="cancellation",
                amount=ZERO,
                currency=order.currency,
                status=RefundStatus.PENDING.value,
                reason=order.cancel_reason,
                idempotency_key=CANCELLATION_KEY,
                created_at=now,
                updated_at=now,
            )
            session.add(release)
        payment = order.document["payment"]
        if await session.get(PaymentConfirmation, order.id) is not None:
            # A bank transfer cannot be pulled back through an API: an operator sends it.
            release.operation, release.amount = "manual", order.captured
            release.failure_reason = "send the money back by bank transfer, then mark it done"
            release.updated_at = now
            await session.flush()
            return
        provider = self.providers.get(payment["provider"], environment=order.environment)
        key = f"release-{order.id}"
        try:
            status = await provider.status(
                payment["reference"], amount=order.total, currency=order.currency
            )
            if status.state is PaymentState.CAPTURED and status.refundable > ZERO:
                outcome = await provider.refund(
                    payment["reference"],
                    amount=status.refundable,
                    currency=order.currency,
                    idempotency_key=key,
                )
                release.operation, release.amount = "refund", outcome.amount
                release.provider_reference = outcome.refund_id
                release.status = outcome.status.value
                release.failure_reason = outcome.failure_reason
                if outcome.status is RefundStatus.SUCCEEDED:
                    order.refunded += outcome.amount
                    order.payment_status = "refunded"
            elif status.state in (PaymentState.AUTHORIZED, PaymentState.PENDING):
                voided = await provider.void(
                    payment["reference"], currency=order.currency, idempotency_key=key
                )
                release.operation, release.amount = "void", status.authorized
                release.status = RefundStatus.SUCCEEDED.value
                order.payment_status = voided.state.value
            else:
                release.operation = "none"  # declined, already voided: nothing is held
                release.status = RefundStatus.SUCCEEDED.value
        except PaymentRejected as rejected:
            release.status = RefundStatus.FAILED.value
            release.failure_reason = f"{rejected.code}: {rejected}"
        release.updated_at = now
        if release.status != RefundStatus.PENDING.value:
            release.completed_at = now
        await session.flush()
        if release.operation == "refund":
            name = {
                RefundStatus.SUCCEEDED.value: "refund.completed",
                RefundStatus.FAILED.value: "refund.failed",
            }.get(release.status)
            if name:
                await self.recorder.record(
                    session,
                    NewEvent(
                        store_id=order.store_id,
                        name=name,
                        at=now,
                        actor=Actor.system("release"),
                        order_id=order.id,
                        entity_id=release.id,
                        external_order_id=order.external_order_id,
                        external_order_number=order.external_order_number,
                    ),
                )
