"""Background loops of a process: the job worker and the webhook dispatcher, each kept
running by a supervisor that restarts it after an unexpected error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from orderbridge.bootstrap import Container

log = logging.getLogger("orderbridge")

Loop = Callable[[asyncio.Event], Awaitable[None]]


async def supervise(name: str, loop: Loop, stop: asyncio.Event, *, max_delay: float = 60.0) -> None:
    """Run ``loop`` until ``stop``; if it ever fails (a database outage it did not absorb),
    log it and start it again after a growing pause, rather than leave work undone until
    someone restarts the process."""
    delay = min(1.0, max_delay)
    while not stop.is_set():
        try:
            await loop(stop)
            return
        except Exception:
            log.exception("%s stopped unexpectedly; restarting in %.0f s", name, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(max_delay, delay * 2)


def start_background(container: Container, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """The job worker and (unless disabled) the webhook dispatcher, woken after commits."""
    worker = container.worker()
    container.db.wakers["jobs"] = worker.wake
    tasks = [asyncio.create_task(supervise("job worker", worker.run, stop))]
    if container.settings.webhook_dispatcher:
        dispatcher = container.dispatcher()
        container.db.wakers["webhooks"] = dispatcher.wake
        tasks.append(asyncio.create_task(supervise("webhook dispatcher", dispatcher.run, stop)))
    return tasks
