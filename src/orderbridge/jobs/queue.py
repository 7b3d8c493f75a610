"""The job table: enqueue, claim under a lease, hold, finish, retry. All job SQL is here;
the one dialect difference is ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), which SQLite does not
need since its writers are serialised."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.database import dialect_of, wake_after_commit
from orderbridge.db.models import Job
from orderbridge.jobs.retry import DEFAULT_RETRY, RetryPolicy

JOBS: Table = Job.__table__  # type: ignore[assignment]

# Built once: the batch worker holds and finishes a claim's jobs with these.
_HOLD = select(JOBS.c.id).where(
    JOBS.c.id.in_(bindparam("ids", expanding=True)), JOBS.c.lease_token == bindparam("token")
)
_HOLD_MANY = {"postgresql": _HOLD.order_by(JOBS.c.id).with_for_update(), "sqlite": _HOLD}
_FINISH_MANY = delete(JOBS).where(
    JOBS.c.id.in_(bindparam("ids", expanding=True)), JOBS.c.lease_token == bindparam("token")
)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FAILED = "failed"  # gave up: kept for an operator to inspect and retry
    # Succeeded jobs are deleted in the transaction that applied their effects.


DEFAULT_MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    kind: str
    order_id: int | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    lease_token: str


async def enqueue(
    session: AsyncSession,
    kind: str,
    *,
    now: datetime,
    order_id: int | None = None,
    payload: dict[str, Any] | None = None,
    run_at: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> None:
    wake_after_commit(session, "jobs")
    await (await session.connection()).execute(
        insert(JOBS),
        {
            "kind": kind,
            "order_id": order_id,
            "payload": payload or {},
            "status": JobStatus.QUEUED.value,
            "run_at": run_at or now,
            "attempts": 0,
            "max_attempts": max_attempts,
            "created_at": now,
            "updated_at": now,
        },
    )


async def claim(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int,
    lease: timedelta,
    kinds: Collection[str] = (),
    others: int = 0,
) -> list[ClaimedJob]:
    """Take up to ``limit`` due jobs: queued ones whose time has come, and running ones whose
    worker's lease has expired (that worker died or hung). With ``kinds``: up to ``limit``
    of those kinds and, in the same statement, up to ``others`` of any other kind (a worker
    that batches some kinds polls with one statement). The jobs of one claim share its
    lease token."""
    due = or_(
        and_(Job.status == JobStatus.QUEUED.value, Job.run_at <= now),
        and_(Job.status == JobStatus.RUNNING.value, Job.lease_expires_at < now),
    )
    postgresql = dialect_of(session) == "postgresql"

    def candidates(*where: ColumnElement[bool], count: int) -> Select[int]:
        ids = select(Job.id).where(due, *where).order_by(Job.run_at).limit(count)
        return ids.with_for_update(skip_locked=True) if postgresql else ids

    if not kinds:
        chosen: Any = candidates(count=limit).scalar_subquery()
    else:
        named = sorted(kinds)
        # Each part locks in a CTE of its own: PostgreSQL refuses FOR UPDATE under a UNION.
        parts = [candidates(Job.kind.in_(named), count=limit).cte("claimed_kinds")]
        if others > 0:
            parts.append(candidates(Job.kind.not_in(named), count=others).cte("claimed_others"))
        chosen = union_all(*(select(part.c.id) for part in parts))
    token = secrets.token_hex(16)
    statement = (
        update(Job)
        .where(Job.id.in_(chosen))
        .values(
            status=JobStatus.RUNNING.value,
            attempts=Job.attempts + 1,
            lease_token=token,
            lease_expires_at=now + lease,
            updated_at=now,
        )
        .returning(Job.id, Job.kind, Job.order_id, Job.payload, Job.attempts, Job.max_attempts)
    )
    rows = (await session.execute(statement)).all()
    return [
        ClaimedJob(
            id=row.id,
            kind=row.kind,
            order_id=row.order_id,
            payload=row.payload,
            attempts=row.attempts,
            max_attempts=row.max_attempts,
            lease_token=token,
        )
        for row in rows
    ]


async def hold(session: AsyncSession, job: ClaimedJob) -> bool:
    """Lock the job for the transaction that applies its effects, if our lease still holds.
    A worker whose lease expired and was taken over finds the token changed and stops."""
    statement = select(Job.id).where(Job.id == job.id, Job.lease_token == job.lease_token)
    if dialect_of(session) == "postgresql":
        statement = statement.with_for_update()
    return (await session.scalar(statement)) is not None


async def hold_many(session: AsyncSession, jobs: Sequence[ClaimedJob]) -> set[int]:
    """``hold`` for the jobs of one claim (one lease token) in one statement: the ids of
    those whose lease still holds, locked for the transaction."""
    tokens = {job.lease_token for job in jobs}
    assert len(tokens) <= 1, "held together: jobs of one claim"
    if not jobs:
        return set()
    statement = _HOLD_MANY[dialect_of(session)]
    connection = await session.connection()
    rows = await connection.execute(
        statement, {"ids": [job.id for job in jobs], "token": jobs[0].lease_token}
    )
    return set(rows.scalars().all())


async def finish(session: AsyncSession, job: ClaimedJob) -> None:
    await session.execute(delete(Job).where(Job.id == job.id, Job.lease_token == job.lease_token))


async def finish_many(session: AsyncSession, jobs: Sequence[ClaimedJob]) -> None:
    """``finish`` for jobs of one claim, held by ``hold_many``: one statement."""
    if jobs:
        connection = await session.connection()
        await connection.execute(
            _FINISH_MANY, {"ids": [job.id for job in jobs], "token": jobs[0].lease_token}
        )


async def reschedule(
    session: AsyncSession, job: ClaimedJob, run_at: datetime, *, now: datetime
) -> None:
    """Run the job again at ``run_at``. Waiting is not failing: the attempts start over."""
    await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.lease_token == job.lease_token)
        .values(
            status=JobStatus.QUEUED.value,
            run_at=run_at,
            attempts=0,
            lease_token=None,
            lease_expires_at=None,
            last_error=None,
            updated_at=now,
        )
    )


async def record_failure(
    session: AsyncSession,
    job: ClaimedJob,
    error: str,
    *,
    now: datetime,
    policy: RetryPolicy = DEFAULT_RETRY,
) -> JobStatus | None:
    """Schedule the next try, or give up after ``max_attempts``. None if the lease was lost."""
    give_up = job.attempts >= job.max_attempts
    status = JobStatus.FAILED if give_up else JobStatus.QUEUED
    result = await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.lease_token == job.lease_token)
        .values(
            status=status.value,
            run_at=now if give_up else now + policy.delay(job.attempts),
            lease_token=None,
            lease_expires_at=None,
            last_error=error[:4000],
            updated_at=now,
        )
    )
    return status if result.rowcount else None  # type: ignore[attr-defined]


async def retry_failed(session: AsyncSession, job_id: int, *, now: datetime) -> bool:
    """An operator puts a failed job back in the queue with a fresh attempt budget."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.FAILED.value)
        .values(status=JobStatus.QUEUED.value, run_at=now, attempts=0, updated_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def list_jobs(
    session: AsyncSession, *, status: JobStatus | None = None, limit: int = 100
) -> list[Job]:
    query = select(Job).order_by(Job.id).limit(limit)
    if status is not None:
        query = query.where(Job.status == status.value)
    return list((await session.scalars(query)).all())
