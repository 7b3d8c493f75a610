"""A webhook dispatcher in its own OS process, for the tests that kill one:

    python -m tests.webhooks.dispatcher_process <database_url> <secret_keys>

Builds the container from Settings (system clock, private targets allowed, as in the test
settings) and runs the dispatcher until SIGTERM, or until it is killed. Its total timeout
is long, so that a request held open by the receiver stays in flight until the kill.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
from pathlib import Path

from orderbridge.bootstrap import build
from orderbridge.settings import Settings, WorkerMode
from orderbridge.webhooks.dispatcher import DispatcherOptions


async def main(database_url: str, secret_keys: str) -> None:
    settings = Settings(
        database_url=database_url,
        secret_keys=secret_keys,
        data_dir=Path(tempfile.mkdtemp(prefix="dispatcher-")),
        worker_mode=WorkerMode.OFF,
        outbound_allow_private=True,
        db_pool_size=2,
    )
    container = build(settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    options = DispatcherOptions(
        connect_timeout=5, total_timeout=30, poll_interval=0.05, retry=container.retry_policy()
    )
    try:
        await container.dispatcher(options).run(stop)
    finally:
        await container.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
