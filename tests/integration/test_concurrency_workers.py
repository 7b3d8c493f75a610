"""Workers sharing one queue: every job runs exactly once however many workers claim at the
same time (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single writer on SQLite), and a
worker that outlives its lease can neither run a job another worker took over nor lose
one it still holds. Time is a frozen clock: leases expire by moving it."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.bootstrap import Container
from orderbridge.clock import FrozenClock
from orderbridge.db.database import Database
from orderbridge.db.models import Order
from orderbridge.demo import sample_order
from orderbridge.jobs.queue import ClaimedJob
from orderbridge.jobs.worker import JobHandler, Worker, WorkerOptions
from orderbridge.orders.lifecycle import OrderStatus
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.orders.service import PROCESS_ORDER
from orderbridge.settings import Settings
from tests.conftest import StoreKeys
from tests.support.concurrency import count_events, count_jobs, postgres_only, wait_until
from tests.support.stalling_worker import LEASE, stalling_worker

pytestmark = pytest.mark.timeout(60)

Run = tuple[str, int, int]  # (worker, job id, attempt)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"db_pool_size": 12})


async def receive_orders(container: Container, store_id: str, count: int) -> list[int]:
    rng = random.Random(count)
    ids = []
    for number in range(count):
        async with container.db.transaction() as session:
            order = CheckoutOrder.model_validate(sample_order(rng))
            outcome = await container.orders.receive(session, store_id, f"o-{number}", order)
        ids.append(outcome.order.id)
    return ids


def recording(
    container: Container, name: str, runs: list[Run], pause: float = 0.0
) -> dict[str, JobHandler]:
    def wrap(handler: JobHandler) -> JobHandler:
        async def recorded(session: AsyncSession, job: ClaimedJob) -> None:
            runs.append((name, job.id, job.attempts))
            await handler(session, job)
            if pause:
                await asyncio.sleep(pause)  # hold the job a moment, so that claims overlap

        return recorded

    return {kind: wrap(handler) for kind, handler in container.handlers.items()}


async def statuses(container: Container, order_ids: list[int]) -> Counter[str]:
    async with container.db.reader() as session:
        rows = await session.scalars(select(Order.status).where(Order.id.in_(order_ids)))
        return Counter(rows)


async def test_two_workers_on_one_queue_run_every_job_exactly_once(
    container: Container, store: StoreKeys, clock: FrozenClock
) -> None:
    order_ids = await receive_orders(container, store.store_id, 30)
    runs: list[Run] = []
    options = WorkerOptions(concurrency=4, batch_size=4, poll_interval=0.01)
    workers = [
        Worker(container.db, clock, recording(container, name, runs, pause=0.002), options)
        for name in ("a", "b")
    ]

    done = await asyncio.gather(*(worker.run_until_idle() for worker in workers))

    assert sum(done) == 30
    job_ids = [job_id for _, job_id, _ in runs]
    assert len(job_ids) == 30 and len(set(job_ids)) == 30, "a job ran twice"
    assert {attempt for _, _, attempt in runs} == {1}
    assert {name for name, _, _ in runs} == {"a", "b"}
    assert await statuses(container, order_ids) == {OrderStatus.READY: 30}
    assert await count_events(container, "order.ready") == 30
    assert await count_jobs(container) == 0


async def test_worker_stalled_past_its_lease_cannot_run_the_job_another_worker_took_over(
    container: Container, store: StoreKeys, clock: FrozenClock
) -> None:
    [order_id] = await receive_orders(container, store.store_id, 1)
    stalled, resume = asyncio.Event(), asyncio.Event()

    async def stall() -> None:
        stalled.set()
        await resume.wait()

    runs: list[Run] = []
    options = WorkerOptions(concurrency=1, batch_size=1, lease=LEASE)
    slow = stalling_worker(
        container.db, clock, recording(container, "slow", runs), "after-claim", stall, options
    )
    slow_run = asyncio.create_task(slow.run_until_idle())
    await asyncio.wait_for(stalled.wait(), 10)
    other = Worker(container.db, clock, recording(container, "other", runs), options)
    assert await other.run_until_idle() == 0  # the lease still holds
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert await other.run_until_idle() == 1

    resume.set()
    await asyncio.wait_for(slow_run, 10)  # it finds its lease token replaced and stops

    assert [(name, attempt) for name, _, attempt in runs] == [("other", 2)]
    assert await statuses(container, [order_id]) == {OrderStatus.READY: 1}
    assert await count_events(container, "order.ready") == 1
    assert await count_jobs(container) == 0


@postgres_only
async def test_worker_past_its_lease_that_still_holds_the_job_keeps_it(
    container: Container, store: StoreKeys, clock: FrozenClock
) -> None:
    # On SQLite the holder has the write lock, so no other worker even gets to claim.
    [order_id] = await receive_orders(container, store.store_id, 1)
    stalled, resume = asyncio.Event(), asyncio.Event()

    async def stall() -> None:
        stalled.set()
        await resume.wait()

    runs: list[Run] = []
    options = WorkerOptions(concurrency=1, batch_size=1, lease=LEASE)
    slow = stalling_worker(
        container.db, clock, recording(container, "slow", runs), "in-handler", stall, options
    )
    slow_run = asyncio.create_task(slow.run_until_idle())
    await asyncio.wait_for(stalled.wait(), 10)
    clock.advance(seconds=LEASE.total_seconds() + 1)
    other = Worker(container.db, clock, recording(container, "other", runs), options)
    # Expired, but locked by the transaction applying it: SKIP LOCKED passes it over.
    assert await other.run_until_idle() == 0

    resume.set()
    assert await asyncio.wait_for(slow_run, 10) == 1
    assert await other.run_until_idle() == 0

    assert [(name, attempt) for name, _, attempt in runs] == [("slow", 1)]
    assert await statuses(container, [order_id]) == {OrderStatus.READY: 1}
    assert await count_events(container, "order.ready") == 1
    assert await count_jobs(container) == 0


class FailingFirstTransaction:
    """A Database whose first transaction fails as a dropped connection would."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        if self.failures == 0:
            self.failures += 1
            raise OperationalError("BEGIN", {}, ConnectionResetError("connection reset"))
        async with self._db.transaction() as session:
            yield session


async def test_worker_keeps_running_after_a_claim_fails_on_a_transient_database_error(
    container: Container, store: StoreKeys, clock: FrozenClock
) -> None:
    [order_id] = await receive_orders(container, store.store_id, 1)
    flaky = FailingFirstTransaction(container.db)
    worker = Worker(
        cast(Database, flaky), clock, container.handlers, WorkerOptions(poll_interval=0.01)
    )
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:

        async def ready_or_dead() -> bool:
            status = await statuses(container, [order_id])
            return running.done() or status == {OrderStatus.READY: 1}

        await wait_until(ready_or_dead, within=10, what="the order to be processed")
        assert not running.done(), f"the worker loop ended: {running.exception()!r}"
    finally:
        stop.set()
        await asyncio.gather(running, return_exceptions=True)
    assert flaky.failures == 1
    assert await statuses(container, [order_id]) == {OrderStatus.READY: 1}
    assert await count_jobs(container, PROCESS_ORDER) == 0
