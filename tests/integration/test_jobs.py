"""The durable job queue: retries with backoff, giving up, lease expiry, operator retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from orderbridge.bootstrap import Container
from orderbridge.clock import FrozenClock
from orderbridge.db.models import Job
from orderbridge.jobs import queue
from orderbridge.jobs.queue import ClaimedJob, JobStatus
from orderbridge.jobs.retry import RetryPolicy
from orderbridge.jobs.worker import Batched, PermanentJobError, Worker, WorkerOptions

NO_JITTER = RetryPolicy(base_seconds=10, factor=2, max_seconds=100, jitter=0)


async def _enqueue(container: Container, kind: str = "test.job", max_attempts: int = 3) -> None:
    async with container.db.transaction() as session:
        await queue.enqueue(session, kind, now=container.clock.now(), max_attempts=max_attempts)


async def _job(container: Container) -> Job:
    async with container.db.reader() as session:
        job = await session.scalar(select(Job))
        assert job is not None
        return job


def _worker(container: Container, handler: object, **options: object) -> Worker:
    return Worker(
        container.db,
        container.clock,
        {"test.job": handler},  # type: ignore[dict-item]
        WorkerOptions(retry=NO_JITTER, **options),
    )  # type: ignore[arg-type]


async def test_failed_job_is_retried_on_the_backoff_schedule_then_given_up(
    container: Container, clock: FrozenClock
) -> None:
    calls: list[int] = []

    async def flaky(_session: object, job: ClaimedJob) -> None:
        calls.append(job.attempts)
        raise RuntimeError("provider down")

    await _enqueue(container, max_attempts=3)
    worker = _worker(container, flaky)
    assert await worker.run_until_idle() == 1
    job = await _job(container)
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 1)
    assert job.run_at == clock.now() + timedelta(seconds=10)
    assert "provider down" in (job.last_error or "")

    clock.advance(seconds=9)
    assert await worker.run_until_idle() == 0  # not due yet
    clock.advance(seconds=1)
    assert await worker.run_until_idle() == 1
    assert (await _job(container)).run_at == clock.now() + timedelta(seconds=20)
    clock.advance(seconds=20)
    await worker.run_until_idle()
    job = await _job(container)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 3)
    assert calls == [1, 2, 3]
    clock.advance(days=1)
    assert await worker.run_until_idle() == 0


async def test_successful_job_is_removed_with_its_effects(container: Container) -> None:
    async def ok(_session: object, _job: ClaimedJob) -> None:
        return None

    await _enqueue(container)
    assert await _worker(container, ok).run_until_idle() == 1
    async with container.db.reader() as session:
        assert await session.scalar(select(Job)) is None


async def test_permanent_error_gives_up_at_once(container: Container) -> None:
    async def broken(_session: object, _job: ClaimedJob) -> None:
        raise PermanentJobError("order does not exist")

    await _enqueue(container, max_attempts=10)
    await _worker(container, broken).run_until_idle()
    job = await _job(container)
    assert (job.status, job.attempts) == (JobStatus.FAILED, 1)


async def test_unknown_job_kind_fails_instead_of_looping(container: Container) -> None:
    await _enqueue(container, kind="no.such.kind")
    await _worker(container, None).run_until_idle()
    assert (await _job(container)).status == JobStatus.FAILED


async def test_expired_lease_is_taken_over_and_the_stale_worker_cannot_finish(
    container: Container, clock: FrozenClock
) -> None:
    await _enqueue(container)
    lease = timedelta(seconds=30)
    async with container.db.transaction() as session:
        [stale] = await queue.claim(session, now=clock.now(), limit=10, lease=lease)
    async with container.db.transaction() as session:
        assert await queue.claim(session, now=clock.now(), limit=10, lease=lease) == []
    clock.advance(seconds=31)
    async with container.db.transaction() as session:
        [fresh] = await queue.claim(session, now=clock.now(), limit=10, lease=lease)
    assert fresh.id == stale.id and fresh.attempts == 2
    async with container.db.transaction() as session:
        assert not await queue.hold(session, stale)
        assert await queue.hold(session, fresh)


async def test_a_claim_s_stale_jobs_are_not_held_with_the_others(
    container: Container, clock: FrozenClock
) -> None:
    for _ in range(3):
        await _enqueue(container)
    lease = timedelta(seconds=30)
    async with container.db.transaction() as session:
        stale = await queue.claim(session, now=clock.now(), limit=10, lease=lease)
    clock.advance(seconds=31)
    async with container.db.transaction() as session:
        [taken] = await queue.claim(session, now=clock.now(), limit=1, lease=lease)
    async with container.db.transaction() as session:
        held = await queue.hold_many(session, stale)
        assert held == {job.id for job in stale} - {taken.id}
        await queue.finish_many(session, [job for job in stale if job.id in held])
    async with container.db.reader() as session:
        assert (await session.scalars(select(Job.id))).all() == [taken.id]


async def test_batched_jobs_run_together_and_one_by_one_when_the_batch_fails(
    container: Container, clock: FrozenClock
) -> None:
    seen: list[tuple[str, int]] = []

    async def one(_session: object, job: ClaimedJob) -> None:
        seen.append(("one", job.attempts))
        if job.payload.get("bad"):
            raise RuntimeError("bad job")

    async def many(_session: object, jobs: list[ClaimedJob]) -> list[None]:
        seen.append(("many", len(jobs)))
        if any(job.payload.get("bad") for job in jobs):
            raise RuntimeError("bad job in the batch")
        return [None] * len(jobs)

    async def enqueue(**payload: object) -> None:
        async with container.db.transaction() as session:
            await queue.enqueue(session, "test.job", now=clock.now(), payload=payload)

    worker = _worker(container, Batched(one, many))  # type: ignore[arg-type]
    for _ in range(3):
        await enqueue()
    assert await worker.run_until_idle() == 3
    assert seen == [("many", 3)]

    seen.clear()
    await enqueue()
    await enqueue(bad=True)
    await enqueue()
    await worker.run_until_idle()
    assert seen == [("many", 3), ("one", 1), ("one", 1), ("one", 1)]
    job = await _job(container)  # only the bad one is left, to be retried
    assert (job.status, job.attempts, job.payload) == (JobStatus.QUEUED, 1, {"bad": True})

    seen.clear()
    await enqueue()
    clock.advance(seconds=10)
    await worker.run_until_idle()
    # The retried job runs alone; the new one, alone in its kind's batch, runs as one too.
    assert sorted(seen) == [("one", 1), ("one", 2)]


async def test_a_one_slot_worker_runs_other_jobs_beside_batched_ones(
    container: Container, clock: FrozenClock
) -> None:
    seen: list[str] = []

    async def one(_session: object, job: ClaimedJob) -> None:
        seen.append(job.kind)

    async def many(_session: object, jobs: list[ClaimedJob]) -> list[None]:
        seen.extend(job.kind for job in jobs)
        return [None] * len(jobs)

    handlers = {"test.job": Batched(one, many), "other.job": one}  # type: ignore[arg-type]
    worker = Worker(container.db, clock, handlers, WorkerOptions(concurrency=1))  # type: ignore[arg-type]
    for kind in ("test.job", "test.job", "other.job", "test.job"):
        async with container.db.transaction() as session:
            await queue.enqueue(session, kind, now=clock.now())
    assert await worker.run_until_idle() == 4
    assert sorted(seen) == ["other.job", "test.job", "test.job", "test.job"]


async def test_operator_retry_requeues_a_failed_job(container: Container) -> None:
    async def broken(_session: object, _job: ClaimedJob) -> None:
        raise PermanentJobError("boom")

    await _enqueue(container)
    await _worker(container, broken).run_until_idle()
    job = await _job(container)
    async with container.db.transaction() as session:
        assert await queue.retry_failed(session, job.id, now=container.clock.now())
        assert not await queue.retry_failed(session, 999_999, now=container.clock.now())
    seen: list[int] = []

    async def ok(_session: object, claimed: ClaimedJob) -> None:
        seen.append(claimed.attempts)

    await _worker(container, ok).run_until_idle()
    assert seen == [1]


@pytest.mark.parametrize("attempt", [1, 2, 5, 10])
def test_backoff_grows_and_is_capped(attempt: int) -> None:
    policy = RetryPolicy(base_seconds=2, factor=3, max_seconds=3600, jitter=0)
    expected = min(3600, 2 * 3 ** (attempt - 1))
    assert policy.delay(attempt) == timedelta(seconds=expected)


def test_jitter_stays_within_its_band() -> None:
    policy = RetryPolicy(base_seconds=100, factor=1, jitter=0.2)
    delays = {policy.delay(1).total_seconds() for _ in range(200)}
    assert all(80 <= d <= 120 for d in delays) and len(delays) > 1
