"""A worker killed with SIGKILL mid-push never produces a duplicate platform order.

The dangerous moment: the merchant's platform (the custom endpoint) has created the order,
and the transaction that records the push and accepts our order has not committed (the
push is made between the claim and that transaction). The worker (a separate process,
tests.plugnplay.push_worker) is killed exactly there. Nothing of the push is recorded, so
the order is READY with its push job RUNNING under a dead lease. Once the lease is over,
the job runs again; being a second run, it asks the platform first (``find_order``), finds
the order the dead worker created, and accepts ours with it: one order on the platform, one
POST ever sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import pytest
from sqlalchemy import select

from orderbridge.bootstrap import Container
from orderbridge.clock import FrozenClock
from orderbridge.db.models import Job, Order, PushAttempt
from orderbridge.jobs.queue import JobStatus
from orderbridge.jobs.worker import Worker, WorkerOptions
from tests.plugnplay.conftest import PlugAndPlay
from tests.support.concurrency import kill, spawn, wait_until
from tests.support.stalling_worker import LEASE

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


async def wait_for_locks_of_the_dead(container: Container) -> None:
    """Block until the killed process's transaction is gone."""
    async with container.db.transaction() as session:
        for model in (Job, Order, PushAttempt):
            await session.execute(select(model.id).with_for_update())


async def test_worker_killed_after_the_platform_created_the_order_never_duplicates_it(
    pnp: PlugAndPlay, container: Container, clock: FrozenClock, database_url: str, tmp_path: Path
) -> None:
    order = await pnp.ready()  # READY; the store connects afterwards
    await pnp.connect()
    assert (await pnp.retry(order["id"])).status_code == 202
    [job] = await pnp.push_jobs()

    stalled = tmp_path / "stalled"
    child = await spawn(
        "tests.plugnplay.push_worker",
        database_url,
        str(stalled),
        clock.now().isoformat(),
        settings=container.settings,
        log_dir=tmp_path,
    )
    try:

        async def stalled_or_exited() -> bool:
            return stalled.exists() or child.returncode is not None

        await wait_until(stalled_or_exited, within=30, what="the push worker to stall")
        assert child.returncode is None, "the push worker exited on its own"
        assert len(pnp.endpoint.orders) == 1  # the platform has it; we have not committed
        assert (await pnp.api.get(order["id"]))["status"] == "READY"
        child.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
    finally:
        kill(child)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.wait(), 10)
    await wait_for_locks_of_the_dead(container)
    [job] = await pnp.push_jobs()
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)
    assert (await pnp.log(order["id"]))["attempts"] == []  # rolled back with the worker

    worker = Worker(container.db, clock, container.handlers, WorkerOptions(lease=LEASE))
    clock.advance(seconds=LEASE.total_seconds() + 1)
    await worker.run_until_idle()

    [held] = pnp.endpoint.orders
    order = await pnp.api.get(order["id"])
    assert order["status"] == "COMPLETED"
    assert order["external"] == {"order_id": held.id, "order_number": held.number}
    assert [r.method for r in pnp.endpoint.requests] == ["POST", "GET"]
    [attempt] = (await pnp.log(order["id"]))["attempts"]
    assert (attempt["action"], attempt["outcome"]) == ("find", "found")
    assert await pnp.push_jobs() == []
