"""A worker process that stops dead inside an ``order.push`` job, right after the platform
(the custom endpoint) created the order and before the job's transaction records it, so
that a crash test can SIGKILL it there.

    python -m tests.plugnplay.push_worker DATABASE_URL SIGNAL_FILE NOW

The container's real handlers and a 1 s lease (tests.support.stalling_worker) on a clock
frozen at NOW; the custom connector's ``create_order`` is wrapped to stall once it has
returned the platform's answer.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path

from orderbridge.bootstrap import build
from orderbridge.clock import FrozenClock
from orderbridge.connectors.custom import CustomEndpointConnector
from orderbridge.connectors.port import PlatformOrder, PushOrder
from orderbridge.jobs.worker import Worker, WorkerOptions
from orderbridge.settings import Settings, WorkerMode
from tests.support.stalling_worker import LEASE, STALL_SECONDS


async def _main(url: str, signal_file: str, now: str) -> None:
    clock = FrozenClock(datetime.fromisoformat(now))
    settings = Settings(
        database_url=url,
        worker_mode=WorkerMode.OFF,
        secret_keys="test-key",
        outbound_allow_private=True,
    )
    container = build(settings, clock=clock)
    create = CustomEndpointConnector.create_order

    async def create_then_stall(self: CustomEndpointConnector, order: PushOrder) -> PlatformOrder:
        created = await create(self, order)
        await asyncio.to_thread(Path(signal_file).touch)
        await asyncio.sleep(STALL_SECONDS)
        return created

    CustomEndpointConnector.create_order = create_then_stall  # type: ignore[method-assign]
    try:
        options = WorkerOptions(concurrency=1, batch_size=1, lease=LEASE)
        await Worker(container.db, clock, container.handlers, options).run_until_idle()
    finally:
        await container.close()
    raise SystemExit("the worker was not killed while stalled")


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:]))
