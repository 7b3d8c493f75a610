"""Running an order through its steps, resumably.

The ``order.process`` job calls ``Pipeline.run`` in one transaction with the order locked.
Steps that passed before (recorded in ``order_steps``) are not run again, so a run that was
interrupted (worker killed, provider down) picks up where it stopped; steps that talk to a
payment provider only make idempotent calls (status, capture keyed by the order), so a run
repeated after a crash never moves money twice. ``run`` returns when to look again (a
step is waiting or in review) or None (the order is READY or CANCELLED).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.clock import Clock
from orderbridge.db.models import Order, OrderStep, Store
from orderbridge.orders.lifecycle import Actor, OrderStatus, change_status
from orderbridge.orders.service import OrderService
from orderbridge.payments.registry import PaymentProviders
from orderbridge.processing import configs, steps
from orderbridge.processing.outcome import Outcome, StepResult
from orderbridge.processing.plan import Route, Step, plan_steps

StepFunction = Callable[[steps.StepContext], Awaitable[StepResult]]

STEPS: dict[Step, StepFunction] = {
    Step.PAYMENT: steps.payment,
    Step.PROHIBITED: steps.prohibited_goods,
    Step.FRAUD: steps.fraud,
    Step.CAPTURE: steps.capture,
}


class Pipeline:
    def __init__(self, clock: Clock, orders: OrderService, providers: PaymentProviders) -> None:
        self.clock = clock
        self.orders = orders
        self.providers = providers

    async def run(self, session: AsyncSession, order_id: int) -> datetime | None:
        order = await session.get(Order, order_id, with_for_update=True)
        if order is None or order.status != OrderStatus.RECEIVED:
            return None  # cancelled meanwhile, or already processed
        store = await session.get(Store, order.store_id)
        assert store is not None
        config = await configs.for_order(session, order)
        now = self.clock.now()
        plan = plan_steps(
            config,
            payment_method=order.document["payment"]["method"],
            categories=[item.get("category") for item in order.document["items"]],
            route=Route(store.country, order.shipping_country),
        )
        passed = await _passed(session, order.id)
        context = steps.StepContext(session, order, store, config, now, self.providers)
        for step in plan:
            if step in passed:
                continue
            result = await STEPS[step](context)
            await _record(session, order, step, result, now)
            if result.outcome is Outcome.PASS:
                continue
            if result.outcome is Outcome.FAIL:
                change = change_status(
                    OrderStatus.RECEIVED,
                    OrderStatus.CANCELLED,
                    Actor.system(f"processing:{step}"),
                    now,
                    reason=result.reason,
                    note=result.summary[:2000],
                )
                await self.orders.apply(session, order, change)
                return None
            return result.until  # waiting, or in review
        change = change_status(
            OrderStatus.RECEIVED, OrderStatus.READY, Actor.system("processing"), now
        )
        await self.orders.apply(session, order, change)
        return None


async def _passed(session: AsyncSession, order_id: int) -> set[str]:
    rows = await session.scalars(
        select(OrderStep.step).where(
            OrderStep.order_id == order_id, OrderStep.outcome == Outcome.PASS.value
        )
    )
    return set(rows.all())


async def _record(
    session: AsyncSession, order: Order, step: Step, result: StepResult, now: datetime
) -> None:
    if result.outcome in (Outcome.WAIT, Outcome.REVIEW):
        # A step polled while it waits is recorded once per distinct answer, not per poll.
        last = await session.scalar(
            select(OrderStep)
            .where(OrderStep.order_id == order.id, OrderStep.step == step.value)
            .order_by(OrderStep.id.desc())
            .limit(1)
        )
        if last is not None and (last.outcome, last.summary) == (
            result.outcome.value,
            result.summary,
        ):
            return
    session.add(
        OrderStep(
            order_id=order.id,
            step=step.value,
            outcome=result.outcome.value,
            reason=result.reason.value if result.reason else None,
            summary=result.summary,
            evidence=result.evidence,
            at=now,
        )
    )
