"""Background loops of a process: the job worker and the webhook dispatcher."""

from __future__ import annotations

import asyncio

from orderbridge.bootstrap import Container


def start_background(container: Container, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """The job worker and (unless disabled) the webhook dispatcher, woken after commits."""
    worker = container.worker()
    container.db.wakers["jobs"] = worker.wake
    tasks = [asyncio.create_task(worker.run(stop))]
    if container.settings.webhook_dispatcher:
        dispatcher = container.dispatcher()
        container.db.wakers["webhooks"] = dispatcher.wake
        tasks.append(asyncio.create_task(dispatcher.run(stop)))
    return tasks
