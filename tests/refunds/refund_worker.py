"""A worker process that stops dead inside a ``refund.execute`` job, after the provider
call and before its commit, so that a crash test can SIGKILL it there.

    python -m tests.refunds.refund_worker DATABASE_URL SIGNAL_FILE NOW LEDGER_DIR

The container's real handlers and a 1 s lease (tests.support.stalling_worker, point
``in-handler``) on a clock frozen at NOW, with the ``test`` provider's refunds kept in
LEDGER_DIR (tests.refunds.providers.LedgerProvider), which the test process shares.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path

from orderbridge.bootstrap import build
from orderbridge.clock import FrozenClock
from orderbridge.payments.registry import PaymentProviders
from orderbridge.settings import Settings, WorkerMode
from tests.refunds.providers import LedgerProvider
from tests.support.stalling_worker import STALL_SECONDS, stalling_worker


async def _main(url: str, signal_file: str, now: str, ledger: str) -> None:
    clock = FrozenClock(datetime.fromisoformat(now))
    payments = PaymentProviders({"test": LedgerProvider(Path(ledger))}, live=frozenset())
    settings = Settings(database_url=url, worker_mode=WorkerMode.OFF)
    container = build(settings, clock=clock, payments=payments)

    async def stall() -> None:
        await asyncio.to_thread(Path(signal_file).touch)
        await asyncio.sleep(STALL_SECONDS)

    try:
        worker = stalling_worker(container.db, clock, container.handlers, "in-handler", stall)
        await worker.run_until_idle()
    finally:
        await container.close()
    raise SystemExit("the worker was not killed while stalled")


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:]))
