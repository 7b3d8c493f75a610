"""Running orders through their steps, resumably.

The ``order.process`` job calls ``Pipeline.run`` in one transaction with the order locked;
the worker runs a batch of these jobs in one transaction through ``Pipeline.run_many``, which
does for each order what ``run`` does, sharing the reads and writes that can be shared (see
``run_many``). Steps that passed before (recorded in ``order_steps``) are not run again, so a
run that was interrupted (worker killed, provider down) picks up where it stopped; steps that
talk to a payment provider only make idempotent calls (status, capture keyed by the order),
so a run repeated after a crash never moves money twice. ``run`` returns when to look again
(a step is waiting or in review) or None (the order is READY or CANCELLED).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.clock import Clock
from orderbridge.db.models import Order, OrderStep, Store
from orderbridge.orders.lifecycle import Actor, OrderStatus, StatusChange, change_status
from orderbridge.orders.service import OrderService
from orderbridge.payments.registry import PaymentProviders
from orderbridge.processing import configs, steps
from orderbridge.processing.outcome import Outcome, StepResult
from orderbridge.processing.plan import Route, Step, plan_steps
from orderbridge.processing.velocity import VelocityQuestion, count_velocity_many
from orderbridge.screening.fraud import counts_needed

StepFunction = Callable[[steps.StepContext], Awaitable[StepResult]]

STEPS: dict[Step, StepFunction] = {
    Step.PAYMENT: steps.payment,
    Step.PROHIBITED: steps.prohibited_goods,
    Step.FRAUD: steps.fraud,
    Step.CAPTURE: steps.capture,
}

ORDER_STEPS: Table = OrderStep.__table__  # type: ignore[assignment]

# Built once: the orders of a batch, locked in id order (two batches never wait on each
# other crosswise), read afresh even if the session knew them.
_LOCK_ORDERS = (
    select(Order)
    .where(Order.id.in_(bindparam("ids", expanding=True)))
    .order_by(Order.id)
    .with_for_update()
    .execution_options(populate_existing=True)
)
_PASSED = select(OrderStep.order_id, OrderStep.step).where(
    OrderStep.order_id.in_(bindparam("ids", expanding=True)),
    OrderStep.outcome == Outcome.PASS.value,
)
_INSERT_STEP = insert(ORDER_STEPS)


@dataclass
class _Run:
    """One order's way through its plan in this pass."""

    context: steps.StepContext
    plan: tuple[Step, ...]
    passed: set[str]
    later: datetime | None = None
    done: bool = False


@dataclass
class _Writes:
    """What a pass writes at its end: the step rows (one executemany) and the status changes
    (``OrderService.apply_many``)."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    changes: list[tuple[Order, StatusChange]] = field(default_factory=list)


class Pipeline:
    def __init__(self, clock: Clock, orders: OrderService, providers: PaymentProviders) -> None:
        self.clock = clock
        self.orders = orders
        self.providers = providers
        self.configs = configs.ConfigCache()
        # A store's country is fixed when the store is created: known once, kept.
        self._countries: dict[str, str] = {}

    async def run(self, session: AsyncSession, order_id: int) -> datetime | None:
        (later,) = await self.run_many(session, [order_id])
        return later

    async def run_many(
        self, session: AsyncSession, order_ids: Sequence[int]
    ) -> list[datetime | None]:
        """``run`` for each order, in the same order, in one pass: the orders locked by one
        statement, their configurations and stores from the process's caches (one query for
        the current versions), the passed steps read only for orders processed before, the
        steps run step by step across the orders (so that the fraud step's velocity counts
        see the card facts that the payment step found for every order before them, as if
        the orders had been processed one after the other), the step rows inserted by one
        executemany and the status changes written together."""
        loaded = (await session.scalars(_LOCK_ORDERS, {"ids": list(order_ids)})).all()
        orders = [order for order in loaded if order.status == OrderStatus.RECEIVED]
        if not orders:
            return [None] * len(order_ids)  # cancelled meanwhile, or already processed
        # An order without a processing version has never been through a run that
        # committed: none of its steps can have passed.
        resumed = [order.id for order in orders if order.processing_version is not None]
        passed = await _passed(session, resumed)
        found = await self.configs.for_orders(session, orders)
        countries = await self._store_countries(session, {order.store_id for order in orders})
        now = self.clock.now()
        runs: dict[int, _Run] = {}
        for order in orders:
            config = found[order.id]
            country = countries[order.store_id]
            plan = plan_steps(
                config,
                payment_method=order.document["payment"]["method"],
                categories=[item.get("category") for item in order.document["items"]],
                route=Route(country, order.shipping_country),
            )
            context = steps.StepContext(session, order, country, config, now, self.providers)
            runs[order.id] = _Run(context, plan, passed.get(order.id, set()))
        writes = _Writes()
        for step in Step:  # the order in which plans list their steps
            due = [
                run
                for run in runs.values()
                if not run.done and step in run.plan and step not in run.passed
            ]
            if step is Step.FRAUD:
                await _count_velocity(session, due)
            for run in due:
                await self._step(session, run, step, writes)
        for run in runs.values():
            if not run.done:
                change = change_status(
                    OrderStatus.RECEIVED, OrderStatus.READY, Actor.system("processing"), now
                )
                writes.changes.append((run.context.order, change))
        if writes.steps:
            await (await session.connection()).execute(_INSERT_STEP, writes.steps)
        await self.orders.apply_many(session, writes.changes)
        return [runs[i].later if i in runs else None for i in order_ids]

    async def _step(self, session: AsyncSession, run: _Run, step: Step, writes: _Writes) -> None:
        context = run.context
        order, now = context.order, context.now
        result = await STEPS[step](context)
        if await _new_answer(session, order, step, result):
            writes.steps.append(
                {
                    "order_id": order.id,
                    "step": step.value,
                    "outcome": result.outcome.value,
                    "reason": result.reason.value if result.reason else None,
                    "summary": result.summary,
                    "evidence": result.evidence,
                    "at": now,
                }
            )
        if result.outcome is Outcome.PASS:
            return
        run.done = True
        if result.outcome is Outcome.FAIL:
            change = change_status(
                OrderStatus.RECEIVED,
                OrderStatus.CANCELLED,
                Actor.system(f"processing:{step}"),
                now,
                reason=result.reason,
                note=result.summary[:2000],
            )
            writes.changes.append((order, change))
            return
        run.later = result.until  # waiting, or in review

    async def _store_countries(self, session: AsyncSession, store_ids: set[str]) -> dict[str, str]:
        missing = sorted(store_ids - self._countries.keys())
        if missing:
            rows = await session.execute(
                select(Store.id, Store.country).where(Store.id.in_(missing))
            )
            self._countries.update({store_id: country for store_id, country in rows.all()})
        return {store_id: self._countries[store_id] for store_id in store_ids}


async def _count_velocity(session: AsyncSession, runs: list[_Run]) -> None:
    """The fraud step's velocity counts for all these orders at once (the payment step
    has run for all of them: the counts see the card facts it found)."""
    screened = [run.context for run in runs if run.context.order.review_status is None]
    questions = []
    for context in screened:
        facts = context.facts()
        needed = counts_needed(context.config.fraud.rules)
        questions.append(VelocityQuestion(context.order, facts, needed))
    counts = await count_velocity_many(session, questions)
    for context, question, found in zip(screened, questions, counts, strict=True):
        context.screened = (question.facts, found)


async def _passed(session: AsyncSession, order_ids: list[int]) -> dict[int, set[str]]:
    if not order_ids:
        return {}
    found: dict[int, set[str]] = {}
    for order_id, step in (await session.execute(_PASSED, {"ids": order_ids})).all():
        found.setdefault(order_id, set()).add(step)
    return found


async def _new_answer(session: AsyncSession, order: Order, step: Step, result: StepResult) -> bool:
    """Whether to record the result: a step polled while it waits is recorded once per
    distinct answer, not per poll."""
    if result.outcome not in (Outcome.WAIT, Outcome.REVIEW):
        return True
    last = await session.scalar(
        select(OrderStep)
        .where(OrderStep.order_id == order.id, OrderStep.step == step.value)
        .order_by(OrderStep.id.desc())
        .limit(1)
    )
    return last is None or (last.outcome, last.summary) != (result.outcome.value, result.summary)
