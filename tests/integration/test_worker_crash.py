"""A worker killed with SIGKILL in the middle of a job loses no job and doubles no effect.

The worker runs in a separate OS process (tests.support.stalling_worker) and is killed
either after its claim, or after the handler applied the effect in a transaction that had
not committed yet. The test process then runs an ordinary worker: within the dead worker's
lease the job is left alone; once the lease is over the job runs once more, and the order
ends with its effect applied exactly once. Time is a frozen clock: the lease expires by
moving it, not by sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.bootstrap import Container
from orderbridge.clock import FrozenClock
from orderbridge.db.models import Event, Job, Order
from orderbridge.demo import sample_order
from orderbridge.ids import order_public_id
from orderbridge.jobs.queue import ClaimedJob, JobStatus
from orderbridge.jobs.worker import JobHandler, Worker, WorkerOptions
from orderbridge.orders.lifecycle import Actor, ActorKind, OrderStatus
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.orders.service import FINALISE_ORDER, PROCESS_ORDER
from tests.conftest import StoreKeys
from tests.support.concurrency import kill, spawn, wait_until
from tests.support.stalling_worker import LEASE

pytestmark = [pytest.mark.timeout(60), pytest.mark.slow]

# The job, the status the order has while it waits, and what the job makes of it.
JOBS = {
    PROCESS_ORDER: (OrderStatus.RECEIVED, OrderStatus.READY, "order.ready"),
    FINALISE_ORDER: (OrderStatus.ACCEPTED, OrderStatus.COMPLETED, "order.completed"),
}


async def order_waiting_for(container: Container, store_id: str, kind: str) -> int:
    """An order whose only pending job is ``kind``."""
    async with container.db.transaction() as session:
        order = CheckoutOrder.model_validate(sample_order(random.Random(5)))
        outcome = await container.orders.receive(session, store_id, "crash", order)
    order_id = outcome.order.id
    if kind == FINALISE_ORDER:
        assert await container.worker().run_until_idle() == 1
        async with container.db.transaction() as session:
            await container.orders.accept(
                session,
                store_id,
                order_public_id(store_id, order_id),
                external_order_id="92",
                external_order_number="00092",
                actor=Actor(ActorKind.MERCHANT, "crash-test"),
            )
    return order_id


async def state(container: Container, order_id: int) -> tuple[str, list[str], list[Job]]:
    """The order's status, its event names in feed order, and the jobs left."""
    async with container.db.reader() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        names = await session.scalars(
            select(Event.name).where(Event.order_id == order_id).order_by(Event.txid, Event.pos)
        )
        jobs = await session.scalars(select(Job).order_by(Job.id))
        return order.status, list(names), list(jobs)


async def wait_for_locks_of_the_dead(container: Container) -> None:
    """Block until whatever the killed process held is released: on PostgreSQL its
    transaction is rolled back once the server sees the connection gone; on SQLite the OS
    drops the file lock of a dead process at once. Without this a worker could skip the
    job (SKIP LOCKED) only because the server had not noticed the death yet."""
    async with container.db.transaction() as session:
        await session.execute(select(Job.id).with_for_update())
        await session.execute(select(Order.id).with_for_update())


def recording(
    handlers: dict[str, JobHandler], runs: list[tuple[str, int]]
) -> dict[str, JobHandler]:
    def wrap(kind: str, handler: JobHandler) -> JobHandler:
        async def recorded(session: AsyncSession, job: ClaimedJob) -> None:
            runs.append((kind, job.attempts))
            await handler(session, job)

        return recorded

    return {kind: wrap(kind, handler) for kind, handler in handlers.items()}


@pytest.mark.parametrize(
    ("kind", "point"),
    [
        (PROCESS_ORDER, "in-handler"),
        (PROCESS_ORDER, "after-claim"),
        (FINALISE_ORDER, "in-handler"),
        # (FINALISE_ORDER, "after-claim") is the same path as PROCESS_ORDER's: the handler
        # is never reached. Left out to keep the process spawns few.
    ],
)
async def test_worker_killed_mid_job_loses_no_job_and_doubles_no_effect(
    container: Container,
    store: StoreKeys,
    clock: FrozenClock,
    database_url: str,
    tmp_path: Path,
    kind: str,
    point: str,
) -> None:
    waiting, done, effect = JOBS[kind]
    order_id = await order_waiting_for(container, store.store_id, kind)
    status, names_before, [job] = await state(container, order_id)
    assert (status, job.kind) == (waiting, kind)

    stalled = tmp_path / "stalled"
    child = await spawn(
        "tests.support.stalling_worker",
        database_url,
        str(stalled),
        point,
        clock.now().isoformat(),
        settings=container.settings,
        log_dir=tmp_path,
    )
    try:

        async def stalled_or_exited() -> bool:
            return stalled.exists() or child.returncode is not None

        await wait_until(stalled_or_exited, within=30, what="the worker to stall")
        assert child.returncode is None, "the stalling worker exited on its own"
        # Claimed under the child's lease; the effect (if applied) is not committed.
        status, names, [job] = await state(container, order_id)
        assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)
        assert (status, names) == (waiting, names_before)
        child.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
    finally:
        kill(child)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.wait(), 10)
    await wait_for_locks_of_the_dead(container)

    runs: list[tuple[str, int]] = []
    worker = Worker(
        container.db,
        clock,
        recording(container.handlers, runs),
        WorkerOptions(lease=LEASE, poll_interval=0.01),
    )
    # The dead worker's lease still holds: its job is left alone, not run twice.
    assert await worker.run_until_idle() == 0
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert await worker.run_until_idle() == 1

    assert runs == [(kind, 2)]
    status, names, jobs = await state(container, order_id)
    assert status == done
    assert names == [*names_before, effect]
    assert jobs == []
