"""The composition root: the one place that builds the object graph from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from orderbridge.clock import Clock, SystemClock
from orderbridge.db.database import Database
from orderbridge.events.recorder import EventRecorder
from orderbridge.jobs.worker import JobHandler, Worker, WorkerOptions
from orderbridge.orders.jobs import order_job_handlers
from orderbridge.orders.service import OrderService
from orderbridge.settings import Settings


@dataclass
class Container:
    settings: Settings
    clock: Clock
    db: Database
    recorder: EventRecorder
    orders: OrderService
    handlers: dict[str, JobHandler] = field(default_factory=dict)

    def worker(self, options: WorkerOptions | None = None) -> Worker:
        s = self.settings
        worker = Worker(
            self.db,
            self.clock,
            self.handlers,
            options
            or WorkerOptions(
                concurrency=s.worker_concurrency,
                batch_size=s.worker_batch_size,
                poll_interval=s.worker_poll_interval,
                lease=timedelta(seconds=s.job_lease_seconds),
            ),
        )
        return worker

    async def close(self) -> None:
        await self.db.dispose()


def build(settings: Settings, *, clock: Clock | None = None) -> Container:
    clock = clock or SystemClock()
    db = Database(settings.resolved_database_url(), pool_size=settings.db_pool_size)
    recorder = EventRecorder()
    orders = OrderService(clock, recorder)
    container = Container(settings, clock, db, recorder, orders)
    container.handlers.update(order_job_handlers(orders))
    return container
