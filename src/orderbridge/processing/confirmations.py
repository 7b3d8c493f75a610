"""Confirming a deferred payment (bank transfer): the money has arrived.

The payment step of a deferred method waits for a ``payment_confirmations`` row until the
store's deadline. This use case writes that row once, notes it on the order's timeline and
asks the pipeline to run now. A repeat with the same amount and reference answers as the
first call did and writes nothing; a different one is refused, because the first is what
the order was processed with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import Order, OrderStep, PaymentConfirmation
from orderbridge.errors import Conflict, FieldError, ValidationFailed
from orderbridge.jobs import queue
from orderbridge.money import fits_currency, format_amount
from orderbridge.orders.lifecycle import Actor, OrderStatus
from orderbridge.orders.service import PROCESS_ORDER, OrderService
from orderbridge.processing import configs
from orderbridge.processing.config import ProcessingConfig

CONFIRMATION_STEP = "payment_confirmation"  # its order_steps entry


class PaymentNotDeferred(Conflict):
    """The order is paid by a method that is not confirmed by hand (a card)."""

    code, title = "payment_not_deferred", "The order's payment method is not deferred"


class OrderNotAwaitingPayment(Conflict):
    """The order is no longer waiting for its payment (cancelled at the deadline, ...)."""

    code, title = "order_not_awaiting_payment", "The order is not waiting for a payment"


class PaymentAlreadyConfirmed(Conflict):
    """A confirmation with another amount or reference was recorded before."""

    code, title = "payment_already_confirmed", "The payment was confirmed differently before"


@dataclass(frozen=True)
class Confirmed:
    order: Order
    confirmation: PaymentConfirmation
    changed: bool  # False: the same confirmation was recorded before


async def confirm_payment(
    session: AsyncSession,
    orders: OrderService,
    store_id: str,
    public_id: str,
    *,
    amount: Decimal,
    reference: str | None,
    actor: Actor,
    now: datetime,
) -> Confirmed:
    """Record that the money of ``public_id``'s deferred payment arrived, by ``actor`` (a
    merchant key, an operator on the command line)."""
    source = f"{actor.kind}:{actor.id}"[:64] if actor.id else actor.kind.value
    order = await orders.load(session, store_id, public_id, for_update=True)
    if amount <= 0 or not fits_currency(amount, order.currency):
        raise ValidationFailed(
            [FieldError("amount", f"a positive amount in {order.currency}'s precision")]
        )
    existing = await session.get(PaymentConfirmation, order.id)
    if existing is not None:
        if (existing.amount, existing.reference) != (amount, reference):
            raise PaymentAlreadyConfirmed(
                f"{existing.amount} {order.currency} (reference {existing.reference}) "
                f"was confirmed for {public_id} before"
            )
        return Confirmed(order, existing, changed=False)
    method = order.document["payment"]["method"]
    if method not in (await _config_of(session, order)).payment.deferred_methods:
        raise PaymentNotDeferred(f"{public_id} is paid by {method}, which is not confirmed by hand")
    if order.status != OrderStatus.RECEIVED.value:
        raise OrderNotAwaitingPayment(f"{public_id} is {order.status}: send the money back")
    confirmation = PaymentConfirmation(
        order_id=order.id, amount=amount, reference=reference, source=source, confirmed_at=now
    )
    session.add(confirmation)
    shown = format_amount(amount, order.currency)
    session.add(
        OrderStep(
            order_id=order.id,
            step=CONFIRMATION_STEP,
            outcome="received",
            reason=None,
            summary=f"{shown} {order.currency} confirmed by {source}",
            evidence={
                "amount": shown,
                "reference": reference,
                "actor": actor.kind.value,
                "actor_id": actor.id,
            },
            at=now,
        )
    )
    # The waiting job stays queued for the deadline and ends without effect if this one
    # has processed the order by then.
    await queue.enqueue(session, PROCESS_ORDER, now=now, order_id=order.id)
    await session.flush()
    return Confirmed(order, confirmation, changed=True)


async def _config_of(session: AsyncSession, order: Order) -> ProcessingConfig:
    # Read-only: the version is fixed by the order's first processing run, not here.
    if order.processing_version is None:
        return (await configs.current(session, order.store_id))[1]
    return await configs.version(session, order.store_id, order.processing_version)
