"""The push: a READY order goes into the merchant's platform, and comes back ACCEPTED with
the platform's order id and number.

1. **Start.** When an order becomes READY in a store whose connection is enabled, the
   ``order.push`` job is written in the same transaction (``on_status``, a hook of
   ``OrderService``), and the order's ``push_status`` becomes ``pending``.
2. **Attempt.** The job maps the order (``connectors.mapping``) and calls the connector.
   The first attempt of a push creates the order. Any later one (after a retryable error,
   or a run whose worker died or lost its lease after the platform may have created the
   order) first asks ``find_order`` by our order id, and creates only if nothing is there:
   that is what keeps a timeout or a SIGKILL from producing a second platform order.
3. **Success** accepts the order with the platform's id and number (actor
   ``plug_and_play``, the same rules as a merchant's accept), which enqueues the
   finalisation: ACCEPTED → COMPLETED.
4. **Retryable** errors wait for the connection's schedule (``retry_delays``; a platform's
   ``retry_after`` is honoured when longer, up to an hour) until ``max_attempts``.
   **Rejections** stop at once.
5. **Giving up** follows the store's failure policy: ``notify`` emits ``order.push_failed``
   and flags the order (``push_status = failed``; it stays READY, and a manual accept or a
   "retry push", which starts a new run of attempts, still works); ``cancel`` cancels it with
   ``store_push_failed``, and the cancellation's release job returns the money.

Every attempt is a ``push_attempts`` row (request summary, platform answer, duration),
written with the job's outcome. The job is an ``OutsideFirst`` handler: the platform is
called after the claim with no transaction open (``attempt``), and the result applied in
the job's transaction (``record``), so no writer waits for a platform (on SQLite, an open
write transaction would hold the only write lock) and a merchant's accept or cancel is not
held up; if one happened meanwhile, the result is recorded and the order left as the
merchant made it. A worker that dies in between commits nothing, and the job's next run
looks before it creates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.clock import Clock
from orderbridge.connectors.calls import (
    AttemptOutcome,
    CallResult,
    PlatformCalls,
    request_summary,
)
from orderbridge.connectors.connections import ConnectionService
from orderbridge.connectors.mapping import CurrencyMode, MissingExchangeRate, push_order
from orderbridge.connectors.pool import ConnectorPool
from orderbridge.connectors.port import (
    RejectionCode,
)
from orderbridge.connectors.schemas import FailurePolicy
from orderbridge.db.database import Database
from orderbridge.db.models import Job, Order, PushAttempt, Store, StoreConnection
from orderbridge.errors import Conflict
from orderbridge.events.recorder import EventRecorder, NewEvent
from orderbridge.ids import order_public_id
from orderbridge.jobs import queue
from orderbridge.jobs.queue import ClaimedJob, JobStatus
from orderbridge.jobs.worker import JobHandler, OutsideFirst, PermanentJobError
from orderbridge.orders.lifecycle import (
    Actor,
    ActorKind,
    CancellationReason,
    OrderStatus,
    StatusChange,
)
from orderbridge.orders.service import OrderService

PUSH_ORDER = "order.push"
PUSH_FAILED_EVENT = "order.push_failed"
PUSH_ACTOR = Actor(ActorKind.PLUG_AND_PLAY, "push")
# A platform's retry hint is followed up to this long; beyond it, the schedule decides.
MAX_RETRY_AFTER = 3600.0


# session.info key: stores whose connection this transaction has looked up (PushService).
_CONNECTED_KEY = "orderbridge.push.connected"


class PushStatus(StrEnum):
    PENDING = "pending"  # a push job is queued
    RETRYING = "retrying"  # an attempt failed; the next one is scheduled
    PUSHED = "pushed"  # the platform has it; the order is ACCEPTED
    FAILED = "failed"  # given up: the merchant is asked to act (policy notify), or cancelled
    SKIPPED = "skipped"  # the merchant accepted or cancelled first, or the connection went


class PushNotPossible(Conflict):
    code, title = "push_not_possible", "The order cannot be pushed now"


@dataclass
class Attempt:
    """What ``PushService.attempt`` did outside the transaction, for ``record``. Without a
    ``connection`` and ``result``, nothing was tried (the order is not READY any more, or
    the store's connection is gone or disabled)."""

    run: int
    number: int = 0
    connection: StoreConnection | None = None  # as it was read, detached
    result: CallResult | None = None
    request: dict[str, str] = field(default_factory=dict)
    started_at: datetime | None = None
    duration_ms: int = 0


class PushService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        recorder: EventRecorder,
        orders: OrderService,
        connections: ConnectionService,
        pool: ConnectorPool,
    ) -> None:
        self.db = db
        self.clock = clock
        self.recorder = recorder
        self.orders = orders
        self.connections = connections
        self.calls = PlatformCalls(connections, pool)

    # ---- starting ---------------------------------------------------------------------------

    async def on_status(
        self, session: AsyncSession, store_id: str, order_id: int, change: StatusChange
    ) -> None:
        """``OrderService`` hook: a READY order of a connected store gets its push job."""
        if change.to_status is not OrderStatus.READY:
            return
        if await self._pushes_to(session, store_id):
            await self._start(session, order_id, run=1, now=change.at)

    async def _pushes_to(self, session: AsyncSession, store_id: str) -> bool:
        """Whether the store has an enabled connection, looked up once per transaction: a
        worker's batch of READY orders of one store needs one lookup, not one per order."""
        known: dict[str, bool] = session.info.setdefault(_CONNECTED_KEY, {})
        if store_id not in known:
            connection = await self.connections.find(session, store_id)
            known[store_id] = connection is not None and connection.enabled
        return known[store_id]

    async def retry(self, session: AsyncSession, store_id: str, public_id: str) -> Order:
        """The merchant's "retry push": a new run of attempts for a READY order whose push
        failed (or was never made, e.g. the connection was added later)."""
        order = await self.orders.load(session, store_id, public_id, for_update=True)
        if order.status != OrderStatus.READY:
            raise PushNotPossible(
                f"the order is {order.status}; only READY orders are pushed",
                code="order_not_ready" if order.status == OrderStatus.RECEIVED else None,
            )
        connection = await self.connections.find(session, store_id)
        if connection is None:
            raise PushNotPossible("the store has no plug & play connection", code="no_connection")
        if not connection.enabled:
            raise PushNotPossible("the store's connection is disabled", code="connection_disabled")
        # The job, not only the flag: a push job an operator deleted, or that failed for
        # good in the worker, must not leave the order stuck "pending".
        under_way = await session.scalar(
            select(Job.id).where(
                Job.kind == PUSH_ORDER,
                Job.order_id == order.id,
                Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]),
            )
        )
        if under_way is not None:
            raise PushNotPossible("a push of this order is under way", code="push_in_progress")
        last_run = await session.scalar(
            select(func.max(PushAttempt.run)).where(PushAttempt.order_id == order.id)
        )
        await self._start(session, order.id, run=(last_run or 0) + 1, now=self.clock.now())
        return order

    async def _start(
        self, session: AsyncSession, order_id: int, *, run: int, now: datetime
    ) -> None:
        await session.execute(
            update(Order).where(Order.id == order_id).values(push_status=PushStatus.PENDING.value)
        )
        await queue.enqueue(session, PUSH_ORDER, now=now, order_id=order_id, payload={"run": run})

    # ---- the job ----------------------------------------------------------------------------

    async def attempt(self, order_id: int, run: int, job_attempt: int) -> Attempt:
        """One try at the platform, with no transaction open (``OutsideFirst``): what it
        did goes to ``record``, in the job's transaction."""
        async with self.db.reader() as session:
            order = await session.get(Order, order_id)
            if order is None or order.status != OrderStatus.READY:
                return Attempt(run)
            connection = await self.connections.find(session, order.store_id)
            if connection is None or not connection.enabled:
                return Attempt(run)
            previous = await session.scalar(
                select(func.count())
                .select_from(PushAttempt)
                .where(PushAttempt.order_id == order.id, PushAttempt.run == run)
            )
            store = await session.get(Store, order.store_id)
            assert store is not None, "an order belongs to a store"
        number = (previous or 0) + 1
        # Not the first try of this push: the platform may hold the order already.
        look_first = number > 1 or job_attempt > 1
        started_at, started = self.clock.now(), time.monotonic()
        request: dict[str, str] = {}
        try:
            push = push_order(
                order, base_currency=store.currency, mode=CurrencyMode(connection.currency_mode)
            )
        except MissingExchangeRate as missing:
            result = CallResult(
                AttemptOutcome.REJECTED,
                "map",
                code=RejectionCode.CURRENCY_UNSUPPORTED.value,
                detail=str(missing),
            )
        else:
            request = request_summary(push)
            result = await self.calls.call(connection, push, look_first=look_first)
        return Attempt(
            run,
            number,
            connection,
            result,
            request,
            started_at,
            int((time.monotonic() - started) * 1000),
        )

    async def record(self, session: AsyncSession, order_id: int, done: Attempt) -> datetime | None:
        """Apply an attempt: its log row, then accept, schedule the next try, or give up.
        Returns when to try again, or None when this push is over."""
        # The order is locked only now: a merchant's accept or cancel did not wait for the
        # platform, and may have happened meanwhile.
        order = await session.scalar(
            select(Order)
            .where(Order.id == order_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if order is None:
            return None
        connection, result = done.connection, done.result
        if connection is None or result is None:  # nothing was tried
            if order.push_status in (PushStatus.PENDING, PushStatus.RETRYING):
                order.push_status = PushStatus.SKIPPED.value
            return None
        if order.status != OrderStatus.READY:
            note = f"the order was {order.status} by then; left as it is"
            result.detail = f"{result.detail}; {note}" if result.detail else note
            if not result.succeeded:
                result.outcome = AttemptOutcome.SKIPPED
            order.push_status = PushStatus.SKIPPED.value
        session.add(
            PushAttempt(
                order_id=order.id,
                store_id=order.store_id,
                run=done.run,
                attempt=done.number,
                platform=connection.platform,
                action=result.action,
                started_at=done.started_at,
                duration_ms=done.duration_ms,
                outcome=result.outcome.value,
                code=result.code,
                detail=result.detail[:4000] if result.detail else None,
                platform_order_id=result.platform.id if result.platform else None,
                platform_order_number=result.platform.number if result.platform else None,
                request=done.request,
                response=result.response,
            )
        )
        await session.flush()
        if order.status != OrderStatus.READY:
            return None
        public_id = order_public_id(order.store_id, order.id)
        if result.platform is not None:
            await self.orders.accept(
                session,
                order.store_id,
                public_id,
                external_order_id=result.platform.id,
                external_order_number=result.platform.number,
                actor=PUSH_ACTOR,
            )
            order.push_status = PushStatus.PUSHED.value
            return None
        if result.outcome is AttemptOutcome.RETRYABLE and done.number < connection.max_attempts:
            order.push_status = PushStatus.RETRYING.value
            return self.clock.now() + _delay(connection, done.number, result.retry_after)
        await self._give_up(session, order, connection, result)
        return None

    async def _give_up(
        self, session: AsyncSession, order: Order, connection: StoreConnection, result: CallResult
    ) -> None:
        order.push_status = PushStatus.FAILED.value
        detail = result.detail or "the platform refused the order"
        if result.outcome is AttemptOutcome.RETRYABLE:
            detail = f"gave up after {connection.max_attempts} attempt(s): {detail}"
        detail = detail[:2000]
        if connection.failure_policy == FailurePolicy.CANCEL:
            await self.orders.cancel(
                session,
                order.store_id,
                order_public_id(order.store_id, order.id),
                reason=CancellationReason.STORE_PUSH_FAILED,
                note=detail,
                actor=PUSH_ACTOR,
            )
            return
        await self.recorder.record(
            session,
            NewEvent(
                store_id=order.store_id,
                name=PUSH_FAILED_EVENT,
                at=self.clock.now(),
                actor=PUSH_ACTOR,
                order_id=order.id,
                reason=(result.code or RejectionCode.REJECTED.value)[:32],
                note=detail,
            ),
        )

    # ---- reading ----------------------------------------------------------------------------

    async def log(
        self, session: AsyncSession, store_id: str, public_id: str
    ) -> tuple[Order, list[PushAttempt]]:
        """The order and every push attempt made for it, oldest first."""
        order = await self.orders.load(session, store_id, public_id)
        attempts = await session.scalars(
            select(PushAttempt)
            .where(PushAttempt.order_id == order.id)
            .order_by(PushAttempt.run, PushAttempt.attempt)
        )
        return order, list(attempts)


def _delay(connection: StoreConnection, attempt: int, retry_after: float | None) -> timedelta:
    """The wait after failed attempt number ``attempt`` (1-based): the schedule's, or the
    platform's hint when that is longer (at most MAX_RETRY_AFTER)."""
    delays: list[int] = connection.retry_schedule["delays"]
    seconds = float(delays[min(attempt, len(delays)) - 1])
    if retry_after is not None:
        seconds = max(seconds, min(retry_after, MAX_RETRY_AFTER))
    return timedelta(seconds=seconds)


def push_job_handlers(pushes: PushService) -> dict[str, JobHandler]:
    def run_of(job: ClaimedJob) -> tuple[int, int]:
        if job.order_id is None:
            raise PermanentJobError(f"{job.kind} job without an order")
        run = job.payload.get("run", 1)
        if not isinstance(run, int):
            raise PermanentJobError(f"{job.kind} job with a bad run number {run!r}")
        return job.order_id, run

    async def outside(job: ClaimedJob) -> Attempt:
        order_id, run = run_of(job)
        return await pushes.attempt(order_id, run, job.attempts)

    async def inside(session: AsyncSession, job: ClaimedJob, done: Attempt) -> datetime | None:
        order_id, _ = run_of(job)
        return await pushes.record(session, order_id, done)

    return {PUSH_ORDER: OutsideFirst(outside, inside)}
