"""A worker that stops dead in the middle of a job, so that a crash test can SIGKILL it there.

    python -m tests.support.stalling_worker DATABASE_URL SIGNAL_FILE POINT NOW

It is an ordinary Worker of the container (the real handlers, a 1 s lease, one job at a
time) on a clock frozen at NOW (ISO 8601), except that at POINT it creates SIGNAL_FILE and
sleeps, holding whatever it holds:

``in-handler``
    the real handler has applied the job's effect (status change, event, follow-up job)
    in the job's transaction, which holds the job row and the order, and is not committed;
``after-claim``
    the claim is committed (the job is RUNNING under this worker's lease), and the
    transaction that applies the effect has not begun.

The same stalls serve in-process tests: ``StallBeforeJobTransaction`` wraps the Database
given to a Worker, ``stall_in_handlers`` wraps its handlers; ``stall`` is any coroutine.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.bootstrap import build
from orderbridge.clock import Clock, FrozenClock
from orderbridge.db.database import Database
from orderbridge.jobs.queue import ClaimedJob
from orderbridge.jobs.worker import JobHandler, Worker, WorkerOptions
from orderbridge.settings import Settings, WorkerMode

Stall = Callable[[], Awaitable[None]]

POINTS = ("in-handler", "after-claim")
LEASE = timedelta(seconds=1)
# Long enough for any test; short enough that a stray child does not outlive the run.
STALL_SECONDS = 60


class StallBeforeJobTransaction:
    """A Database whose second ``transaction()`` (a worker's first after its claim: the one
    that would run the job) stalls before it begins. Everything else is passed through."""

    def __init__(self, db: Database, stall: Stall) -> None:
        self._db = db
        self._stall = stall
        self._transactions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        self._transactions += 1
        if self._transactions == 2:
            await self._stall()
        async with self._db.transaction() as session:
            yield session


def stall_in_handlers(handlers: Mapping[str, JobHandler], stall: Stall) -> dict[str, JobHandler]:
    """The handlers, each stalling after it has applied its effect, before the commit."""

    def wrap(handler: JobHandler) -> JobHandler:
        async def stalled(session: AsyncSession, job: ClaimedJob) -> None:
            await handler(session, job)
            await session.flush()
            await stall()

        return stalled

    return {kind: wrap(handler) for kind, handler in handlers.items()}


def stalling_worker(
    db: Database,
    clock: Clock,
    handlers: Mapping[str, JobHandler],
    point: str,
    stall: Stall,
    options: WorkerOptions | None = None,
) -> Worker:
    options = options or WorkerOptions(concurrency=1, batch_size=1, lease=LEASE)
    if point == "in-handler":
        return Worker(db, clock, stall_in_handlers(handlers, stall), options)
    if point == "after-claim":
        gated = cast(Database, StallBeforeJobTransaction(db, stall))
        return Worker(gated, clock, handlers, options)
    raise ValueError(f"unknown stall point {point!r}; one of {POINTS}")


async def _main(url: str, signal_file: str, point: str, now: str) -> None:
    clock = FrozenClock(datetime.fromisoformat(now))
    container = build(Settings(database_url=url, worker_mode=WorkerMode.OFF), clock=clock)

    async def stall() -> None:
        await asyncio.to_thread(Path(signal_file).touch)
        await asyncio.sleep(STALL_SECONDS)

    try:
        worker = stalling_worker(container.db, clock, container.handlers, point, stall)
        await worker.run_until_idle()
    finally:
        await container.close()
    raise SystemExit("the worker was not killed while stalled")


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:]))
