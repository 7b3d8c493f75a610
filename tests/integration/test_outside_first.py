"""Job handlers that call the outside world before their transaction (``OutsideFirst``):
the call runs with no transaction open, its result reaches the part inside, and a worker
whose lease was taken over meanwhile commits nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.bootstrap import Container
from orderbridge.clock import FrozenClock
from orderbridge.db.models import Job
from orderbridge.jobs import queue
from orderbridge.jobs.queue import ClaimedJob, JobStatus
from orderbridge.jobs.worker import OutsideFirst, Worker, WorkerOptions

LEASE = timedelta(seconds=30)


async def jobs(container: Container) -> list[Job]:
    async with container.db.reader() as session:
        return list(await session.scalars(select(Job)))


async def test_the_outside_part_writes_meanwhile_and_its_result_reaches_the_inside(
    container: Container,
) -> None:
    """The outside part can open a write transaction of its own: none is held for it."""
    seen: list[object] = []

    async def outside(job: ClaimedJob) -> str:
        async with container.db.transaction() as session:
            await queue.enqueue(session, "other.job", now=container.clock.now())
        return f"answer-{job.id}"

    async def inside(session: AsyncSession, job: ClaimedJob, answer: str) -> datetime | None:
        seen.append(answer)
        return None

    async with container.db.transaction() as session:
        await queue.enqueue(session, "probe", now=container.clock.now())
    [job] = await jobs(container)
    worker = Worker(container.db, container.clock, {"probe": OutsideFirst(outside, inside)})

    await worker.run_until_idle()

    assert seen == [f"answer-{job.id}"]
    assert [j.kind for j in await jobs(container)] == ["other.job"]  # the probe is done


async def test_a_worker_whose_lease_was_taken_during_the_outside_part_commits_nothing(
    container: Container, clock: FrozenClock
) -> None:
    inside_ran: list[int] = []

    async def outside(job: ClaimedJob) -> None:
        # Meanwhile the lease expires and another worker claims the job.
        clock.advance(seconds=LEASE.total_seconds() + 1)
        async with container.db.transaction() as session:
            taken = await queue.claim(session, now=clock.now(), limit=1, lease=LEASE)
        assert [j.id for j in taken] == [job.id]

    async def inside(session: AsyncSession, job: ClaimedJob, _: None) -> datetime | None:
        inside_ran.append(job.id)
        return None

    async with container.db.transaction() as session:
        await queue.enqueue(session, "probe", now=clock.now())
    worker = Worker(
        container.db,
        clock,
        {"probe": OutsideFirst(outside, inside)},
        WorkerOptions(concurrency=1, batch_size=1, lease=LEASE),
    )

    await worker.run_until_idle(max_rounds=1)

    assert inside_ran == []
    [job] = await jobs(container)
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 2)  # the other worker's
