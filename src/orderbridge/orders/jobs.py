"""The job handlers of the order lifecycle."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.jobs.queue import ClaimedJob
from orderbridge.jobs.worker import JobHandler, PermanentJobError
from orderbridge.orders.service import FINALISE_ORDER, PROCESS_ORDER, OrderService


def order_job_handlers(orders: OrderService) -> dict[str, JobHandler]:
    def order_id(job: ClaimedJob) -> int:
        if job.order_id is None:
            raise PermanentJobError(f"{job.kind} job without an order")
        return job.order_id

    async def process(session: AsyncSession, job: ClaimedJob) -> None:
        await orders.process(session, order_id(job))

    async def finalise(session: AsyncSession, job: ClaimedJob) -> None:
        await orders.finalise(session, order_id(job))

    return {PROCESS_ORDER: process, FINALISE_ORDER: finalise}
