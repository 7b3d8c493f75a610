"""A worker process that stops dead inside an ``order.push`` job to a real Vendure, so that
a crash test can SIGKILL it there.

    python -m tests.connectors.vendure_push_worker DATABASE_URL SIGNAL_FILE NOW WHERE

``WHERE`` is where it stalls:

- ``settled``: Vendure settled the order (``create_order`` returned), the job's transaction
  has not recorded it;
- ``draft``: the tagged draft is built (lines, customer, addresses), the request that would
  settle it is never sent: a Draft carrying our order id stays in Vendure.

The container's real handlers and a 1 s lease (tests.support.stalling_worker) on a clock
frozen at NOW.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from orderbridge.bootstrap import build
from orderbridge.clock import FrozenClock
from orderbridge.connectors.port import PlatformOrder, PushOrder
from orderbridge.connectors.vendure import VendureConnector
from orderbridge.jobs.worker import Worker, WorkerOptions
from orderbridge.settings import Settings, WorkerMode
from tests.support.stalling_worker import LEASE, STALL_SECONDS


def _stall_after_create(signal_file: Path) -> None:
    create = VendureConnector.create_order

    async def create_then_stall(self: VendureConnector, order: PushOrder) -> PlatformOrder:
        created = await create(self, order)
        await asyncio.to_thread(signal_file.touch)
        await asyncio.sleep(STALL_SECONDS)
        return created

    VendureConnector.create_order = create_then_stall  # type: ignore[method-assign]


def _stall_before_settling(signal_file: Path) -> None:
    call = VendureConnector._call

    async def stall_before_settle(
        self: VendureConnector, document: str, variables: Mapping[str, Any], **kwargs: Any
    ) -> Any:
        if document.startswith("mutation SettleOrder"):
            await asyncio.to_thread(signal_file.touch)
            await asyncio.sleep(STALL_SECONDS)
        return await call(self, document, variables, **kwargs)

    VendureConnector._call = stall_before_settle  # type: ignore[method-assign]


async def _main(url: str, signal_file: str, now: str, where: str) -> None:
    clock = FrozenClock(datetime.fromisoformat(now))
    settings = Settings(
        database_url=url,
        worker_mode=WorkerMode.OFF,
        secret_keys="test-key",
        outbound_allow_private=True,
    )
    container = build(settings, clock=clock)
    stall = {"settled": _stall_after_create, "draft": _stall_before_settling}[where]
    stall(Path(signal_file))
    try:
        options = WorkerOptions(concurrency=1, batch_size=1, lease=LEASE)
        await Worker(container.db, clock, container.handlers, options).run_until_idle()
    finally:
        await container.close()
    raise SystemExit("the worker was not killed while stalled")


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:]))
