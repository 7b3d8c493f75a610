"""A worker killed with SIGKILL in the middle of a refund never refunds twice.

The dangerous moment: the provider has refunded, and the transaction that marks the refund
succeeded has not committed. The worker (a separate process, tests.refunds.refund_worker)
is killed exactly there. Its transaction is rolled back, so the refund is pending again
and, once the dead worker's lease is over, the job runs once more: it asks the provider
with the same key (the refund id), gets the first refund back, and records it once. The
provider keeps its refunds in a file both processes share, so that the test sees every
call, including the one the dead worker made."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from orderbridge.bootstrap import Container
from orderbridge.clock import FrozenClock
from orderbridge.db.models import Job, Order, Refund
from orderbridge.jobs.queue import JobStatus
from orderbridge.jobs.worker import Worker, WorkerOptions
from orderbridge.refunds.service import EXECUTE_REFUND
from tests.refunds.conftest import RefundApi, stored
from tests.refunds.providers import LedgerProvider, RecordingProvider
from tests.support.concurrency import kill, spawn, wait_until
from tests.support.stalling_worker import LEASE

pytestmark = [pytest.mark.timeout(60), pytest.mark.slow]


@pytest.fixture
def provider(tmp_path: Path) -> RecordingProvider:
    return LedgerProvider(tmp_path / "ledger")


async def jobs(container: Container) -> list[Job]:
    async with container.db.reader() as session:
        return list(await session.scalars(select(Job).order_by(Job.id)))


async def wait_for_locks_of_the_dead(container: Container) -> None:
    """Block until the killed process's transaction is gone (PostgreSQL rolls it back once
    it sees the connection closed; SQLite's file lock goes with the process)."""
    async with container.db.transaction() as session:
        for model in (Job, Refund, Order):
            await session.execute(select(model.id).with_for_update())


async def test_worker_killed_after_the_provider_refunded_does_not_refund_twice(
    refunds: RefundApi,
    provider: LedgerProvider,
    container: Container,
    clock: FrozenClock,
    database_url: str,
    tmp_path: Path,
) -> None:
    order = await refunds.completed_order()
    refund = await refunds.create(order["id"], {"amount": "20.00"})
    [job] = await jobs(container)
    assert job.kind == EXECUTE_REFUND

    stalled = tmp_path / "stalled"
    child = await spawn(
        "tests.refunds.refund_worker",
        database_url,
        str(stalled),
        clock.now().isoformat(),
        str(provider.directory),
        settings=container.settings,
        log_dir=tmp_path,
    )
    try:

        async def stalled_or_exited() -> bool:
            return stalled.exists() or child.returncode is not None

        await wait_until(stalled_or_exited, within=30, what="the worker to stall")
        assert child.returncode is None, "the refund worker exited on its own"
        # The provider has refunded; nothing of it is committed here yet.
        assert list(provider.refunds()) == [refund["id"]]
        [pending] = await refunds.listed(order["id"])
        assert pending["status"] == "pending"
        child.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
    finally:
        kill(child)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.wait(), 10)
    await wait_for_locks_of_the_dead(container)
    [job] = await jobs(container)
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)

    worker = Worker(container.db, clock, container.handlers, WorkerOptions(lease=LEASE))
    assert await worker.run_until_idle() == 0  # the dead worker's lease still holds
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert await worker.run_until_idle() == 1

    # Two calls with the same key, one refund at the provider, one in our books.
    assert [(c.amount, c.idempotency_key) for c in provider.calls()] == [
        (Decimal("20.00"), refund["id"])
    ] * 2
    assert list(provider.refunds()) == [refund["id"]]
    order_row, rows, names = await stored(container, order["id"])
    assert [(r.id, r.status) for r in rows] == [(refund["id"], "succeeded")]
    assert order_row.refunded == Decimal("20.00")
    assert names == ["refund.created", "refund.completed"]
    assert await jobs(container) == []
    assert (await refunds.api.get(order["id"]))["payment"]["refunded"] == "20.00"
