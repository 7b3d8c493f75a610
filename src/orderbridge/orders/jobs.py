"""The job handlers of an order's life: processing, finalisation, money release."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.jobs.queue import ClaimedJob
from orderbridge.jobs.worker import Batched, JobHandler, PermanentJobError
from orderbridge.orders.service import (
    FINALISE_ORDER,
    PROCESS_ORDER,
    RELEASE_PAYMENT,
    OrderService,
)
from orderbridge.processing.pipeline import Pipeline
from orderbridge.refunds.release import PaymentRelease


def order_job_handlers(
    orders: OrderService, pipeline: Pipeline, release: PaymentRelease
) -> dict[str, JobHandler]:
    def order_id(job: ClaimedJob) -> int:
        if job.order_id is None:
            raise PermanentJobError(f"{job.kind} job without an order")
        return job.order_id

    async def process(session: AsyncSession, job: ClaimedJob) -> datetime | None:
        return await pipeline.run(session, order_id(job))

    async def process_many(
        session: AsyncSession, jobs: Sequence[ClaimedJob]
    ) -> list[datetime | None]:
        return await pipeline.run_many(session, [order_id(job) for job in jobs])

    async def finalise(session: AsyncSession, job: ClaimedJob) -> datetime | None:
        await orders.finalise(session, order_id(job))
        return None

    async def release_payment(session: AsyncSession, job: ClaimedJob) -> datetime | None:
        await release.run(session, order_id(job))
        return None

    return {
        PROCESS_ORDER: Batched(process, process_many),
        FINALISE_ORDER: finalise,
        RELEASE_PAYMENT: release_payment,
    }
