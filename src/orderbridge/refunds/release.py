"""The release of a cancelled order's money, run by the ``payment.release`` job.

One release per order (idempotency key ``cancellation``): the row is written on the first
run; the provider call is keyed by the order (``release-<id>``), so a run repeated after a
crash or a provider error repeats the same void or refund, never a second one.
"""

from __future__ import annotations

from typing import Any

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
from orderbridge.processing import configs

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
        if await _deferred(session, order, payment["method"]):
            release.operation = "none"  # the transfer never arrived: nothing to give back
            release.status = RefundStatus.SUCCEEDED.value
        else:
            await self._through_provider(order, release, payment)
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

    async def _through_provider(
        self, order: Order, release: Refund, payment: dict[str, Any]
    ) -> None:
        """Refund what was captured, void what was only held. Both calls are keyed by the
        order, and the provider answers a repeat with the first result, so a run repeated
        after a crash records the same release instead of \"nothing held\"."""
        key = f"release-{order.id}"
        try:
            provider = self.providers.get(payment["provider"], environment=order.environment)
            status = await provider.status(
                payment["reference"], amount=order.total, currency=order.currency
            )
            captured = max(order.captured, status.captured)
            if status.state is PaymentState.CAPTURED or captured > ZERO:
                amount = captured - order.refunded
                if amount <= ZERO:
                    release.operation, release.status = "none", RefundStatus.SUCCEEDED.value
                    return
                outcome = await provider.refund(
                    payment["reference"],
                    amount=amount,
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
            elif status.state is PaymentState.FAILED:
                release.operation = "none"  # declined: nothing is held
                release.status = RefundStatus.SUCCEEDED.value
            else:  # authorised, pending, or voided already by a run that died
                voided = await provider.void(
                    payment["reference"], currency=order.currency, idempotency_key=key
                )
                release.operation, release.amount = "void", status.authorized
                release.status = RefundStatus.SUCCEEDED.value
                order.payment_status = voided.state.value
        except PaymentRejected as rejected:
            release.status = RefundStatus.FAILED.value
            release.failure_reason = f"{rejected.code}: {rejected}"


async def _deferred(session: AsyncSession, order: Order, method: str) -> bool:
    """Whether the order pays by a deferred method (bank transfer) under its configuration."""
    if order.processing_version is not None:
        config = await configs.version(session, order.store_id, order.processing_version)
    else:
        _, config = await configs.current(session, order.store_id)
    return method in config.payment.deferred_methods
