"""A local webhook receiver for tests: records every request and answers as told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # status, headers, delay in seconds; called with the request number (1-based)
    answer: Callable[[int], tuple[int, dict[str, str], float]] = lambda _n: (200, {}, 0.0)


@asynccontextmanager
async def receiver(path: str = "/hooks") -> AsyncIterator[Receiver]:
    state = Receiver(url="")

    async def handle(request: web.Request) -> web.Response:
        state.requests.append(Received(await request.read(), dict(request.headers)))
        status, headers, delay = state.answer(len(state.requests))
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "no")

    app = web.Application()
    app.router.add_post(path, handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}{path}"
    try:
        yield state
    finally:
        await runner.cleanup()
