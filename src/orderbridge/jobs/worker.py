"""The worker: claims due jobs in batches, runs each handler in its own transaction together
with the removal of the job, and records failures for a later retry.

A handler receives the open session and the claimed job. It must not commit, and it must not
call anything outside the process: effects that leave the process (payments, webhooks,
pushes) are made idempotent by their own keys, in their own handlers. A handler that makes
such a call can be an ``OutsideFirst``: the call is made after the claim, before the job's
transaction opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.clock import Clock
from orderbridge.db.database import Database
from orderbridge.jobs import queue
from orderbridge.jobs.queue import ClaimedJob, JobStatus
from orderbridge.jobs.retry import DEFAULT_RETRY, RetryPolicy

log = logging.getLogger("orderbridge.worker")

# A handler returns None when the job is done, or when to run it again (it is waiting for
# something: a buyer's 3-D Secure, a bank transfer, a review). Either way its effects commit.
JobHandler = Callable[[AsyncSession, ClaimedJob], Awaitable[datetime | None]]


T = TypeVar("T")


class OutsideFirst(Generic[T]):
    """A handler whose work leaves the process (a platform push), in two parts: ``outside``
    runs after the claim with no transaction open, so that no writer waits for the remote
    call (on SQLite, an open write transaction holds the only write lock), and ``inside``
    applies its result in the job's transaction, fenced by the lease like any handler. A
    worker that dies between the two, or whose lease is taken over meanwhile, commits
    nothing, and the job runs again: ``outside`` must be safe to repeat (keyed by the job,
    or looking before it acts). Called as a plain ``JobHandler`` it runs both in one."""

    def __init__(
        self,
        outside: Callable[[ClaimedJob], Awaitable[T]],
        inside: Callable[[AsyncSession, ClaimedJob, T], Awaitable[datetime | None]],
    ) -> None:
        self.outside = outside
        self.inside = inside

    async def __call__(self, session: AsyncSession, job: ClaimedJob) -> datetime | None:
        return await self.inside(session, job, await self.outside(job))


# Runs the jobs of a batch (one kind, one claim) in the open session; returns, per job and in
# the same order, what a ``JobHandler`` returns for it. Raising fails the batch as a whole.
BatchHandler = Callable[[AsyncSession, Sequence[ClaimedJob]], Awaitable[list[datetime | None]]]


class Batched:
    """A handler that can also run many claimed jobs of its kind in one transaction: one
    lease check for all, one DELETE of the finished, one COMMIT, and whatever ``many`` can
    share between them (the pipeline loads its orders in one statement). A job's effects
    then commit with the others' or not at all. If the batch raises, it is rolled back and
    its jobs run again one by one, each in its own transaction, through ``one``: a job that
    fails there fails alone. A retried job (``attempts`` > 1: its last run failed, or its
    worker died) always runs alone, so that one that kills its worker cannot take the rest
    of a batch down with it on every attempt. Called as a plain ``JobHandler`` it is ``one``."""

    def __init__(self, one: JobHandler, many: BatchHandler) -> None:
        self.one = one
        self.many = many

    async def __call__(self, session: AsyncSession, job: ClaimedJob) -> datetime | None:
        return await self.one(session, job)


class PermanentJobError(Exception):
    """Raised by a handler when trying again cannot help: the job fails at once."""


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 8
    batch_size: int = 32
    poll_interval: float = 0.25
    lease: timedelta = timedelta(seconds=60)
    retry: RetryPolicy = DEFAULT_RETRY


class Worker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        handlers: Mapping[str, JobHandler],
        options: WorkerOptions | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.handlers = dict(handlers)
        self.options = options or WorkerOptions()
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(self.options.concurrency)
        self._running: set[asyncio.Task[None]] = set()
        # Set by a claim that got fewer jobs than it asked for: no more are due, so the loop
        # waits for the next poll or wake-up rather than claim again at once (which would
        # mostly find the one or two jobs committed meanwhile: batches of one).
        self._drained = False
        self._others_first = False
        self._batched = frozenset(
            kind for kind, handler in self.handlers.items() if isinstance(handler, Batched)
        )

    def wake(self) -> None:
        """Tell an idle worker that jobs were just committed (same process only)."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run jobs until ``stop`` is set, then let the running ones finish."""
        try:
            failures = 0
            while not stop.is_set():
                # Cleared before claiming, so that a wake-up during the claim is not lost.
                self._wakeup.clear()
                try:
                    claimed = await self._claim_some()
                    failures = 0
                except Exception:
                    # The database went away or is busy: keep the loop alive and back off,
                    # rather than leave every job waiting for a restart.
                    failures += 1
                    log.exception("claiming jobs failed (%s in a row)", failures)
                    claimed = 0
                if claimed and not self._drained:
                    continue
                pause = self.options.poll_interval
                if failures:
                    pause = min(30.0, self.options.poll_interval * 2**failures)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(stop.wait(), self._wakeup.wait()), pause)
        finally:
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)

    async def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """Run due jobs until none is left; returns how many ran. For tests and the CLI."""
        total = 0
        for _ in range(max_rounds):
            claimed = await self._claim_some()
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
            if not claimed:
                return total
            total += claimed
        return total

    async def _claim_some(self) -> int:
        free = self.options.concurrency - len(self._running)
        self._drained = False
        if free <= 0:
            await asyncio.wait(self._running, return_when=asyncio.FIRST_COMPLETED)
            return 1
        # Jobs of a ``Batched`` kind take one slot per batch of up to ``batch_size``; any
        # other job takes a slot of its own.
        size = self.options.batch_size
        batches: list[list[ClaimedJob]] = []
        jobs: list[ClaimedJob] = []
        async with self.db.transaction() as session:
            now, lease = self.clock.now(), self.options.lease
            if self._batched and free > 1:
                # One statement: a batch's worth of the batched kinds (one slot) and one job
                # of another kind per remaining slot.
                others = min(free - 1, size)
                claimed = await queue.claim(
                    session, now=now, limit=size, lease=lease, kinds=self._batched, others=others
                )
                jobs = [job for job in claimed if job.kind not in self._batched]
                mine = [job for job in claimed if job.kind in self._batched]
                drained = len(mine) < size and len(jobs) < others
            elif self._batched:
                # One slot: every other claim takes the oldest due job whatever its kind,
                # the others a batch first, so that batches cannot keep other work waiting.
                self._others_first = not self._others_first
                mine, jobs = [], []
                if self._others_first:
                    jobs = await queue.claim(session, now=now, limit=1, lease=lease)
                    mine = [job for job in jobs if job.kind in self._batched]
                    jobs = [job for job in jobs if job.kind not in self._batched]
                if not mine and not jobs:
                    mine = await queue.claim(
                        session, now=now, limit=size, lease=lease, kinds=self._batched
                    )
                if not mine and not jobs and not self._others_first:
                    jobs = await queue.claim(session, now=now, limit=1, lease=lease)
                drained = not mine and not jobs
            else:
                mine = []
                limit = min(free, size)
                jobs = await queue.claim(session, now=now, limit=limit, lease=lease)
                drained = len(jobs) < limit
            batches = _batches(mine)
        self._drained = drained
        for batch in batches:
            self._start(self._execute_batch(batch))
        for job in jobs:
            self._start(self._execute(job))
        return len(jobs) + sum(len(batch) for batch in batches)

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _execute_batch(self, jobs: list[ClaimedJob]) -> None:
        """Jobs of one ``Batched`` kind from one claim, in one transaction (see ``Batched``)."""
        if len(jobs) == 1:
            await self._execute(jobs[0])
            return
        handler = self.handlers[jobs[0].kind]
        assert isinstance(handler, Batched)
        try:
            async with self.db.transaction() as session:
                held = await queue.hold_many(session, jobs)
                mine = [job for job in jobs if job.id in held]
                for job in jobs:
                    if job.id not in held:
                        log.warning("job %s: lease lost, another worker has it", job.id)
                results = await handler.many(session, mine) if mine else []
                now = self.clock.now()
                await queue.finish_many(
                    session,
                    [job for job, later in zip(mine, results, strict=True) if later is None],
                )
                for job, later in zip(mine, results, strict=True):
                    if later is not None:
                        await queue.reschedule(session, job, later, now=now)
        except Exception:
            log.warning(
                "a batch of %s %s jobs failed; running them one by one",
                len(jobs), jobs[0].kind, exc_info=True,
            )  # fmt: skip
            for job in jobs:
                await self._execute(job)

    async def _execute(self, job: ClaimedJob) -> None:
        handler = self.handlers.get(job.kind)
        try:
            if handler is None:
                raise PermanentJobError(f"no handler for job kind {job.kind!r}")
            if job.attempts > job.max_attempts:
                # Claimed again after its lease expired too many times: it keeps killing
                # or hanging its worker. Stop feeding it to workers.
                raise PermanentJobError("lease expired on every attempt")
            prepared: Any = None
            if isinstance(handler, OutsideFirst):
                prepared = await handler.outside(job)
            async with self.db.transaction() as session:
                if not await queue.hold(session, job):
                    log.warning("job %s: lease lost, another worker has it", job.id)
                    return
                if isinstance(handler, OutsideFirst):
                    later = await handler.inside(session, job, prepared)
                else:
                    later = await handler(session, job)
                if later is None:
                    await queue.finish(session, job)
                else:
                    await queue.reschedule(session, job, later, now=self.clock.now())
        except Exception as error:
            await self._fail(job, error)

    async def _fail(self, job: ClaimedJob, error: Exception) -> None:
        if isinstance(error, PermanentJobError):
            job = replace(job, max_attempts=job.attempts)
        message = f"{type(error).__name__}: {error}"
        try:
            async with self.db.transaction() as session:
                status = await queue.record_failure(
                    session, job, message, now=self.clock.now(), policy=self.options.retry
                )
        except Exception:
            log.exception("job %s: could not record its failure; its lease will expire", job.id)
            return
        level = logging.ERROR if status is JobStatus.FAILED else logging.WARNING
        log.log(level, "job %s (%s) attempt %s failed: %s", job.id, job.kind, job.attempts, message)


def _batches(jobs: list[ClaimedJob]) -> list[list[ClaimedJob]]:
    """One batch per kind of first attempts; every retried job a batch of its own."""
    by_kind: dict[str, list[ClaimedJob]] = {}
    alone: list[list[ClaimedJob]] = []
    for job in jobs:
        if job.attempts > 1:
            alone.append([job])
        else:
            by_kind.setdefault(job.kind, []).append(job)
    return [*by_kind.values(), *alone]


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
