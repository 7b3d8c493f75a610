"""A local webhook receiver for tests: records every request and answers as told.

``answer(n)`` gives the status, headers and delay for request number ``n`` (1-based); a
delay of ``HOLD`` keeps the request open until ``release`` is set. ``body(n)`` gives the
response body: bytes, or a list of pieces written one after another with a pause between
them (a body that arrives in several reads).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

HOLD = math.inf
PIECE_PAUSE = 0.05


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    at: float = 0.0  # time.monotonic() when the request arrived


def _default_body(_n: int) -> bytes | list[bytes] | None:
    return None


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    # status, headers, delay in seconds; called with the request number (1-based)
    answer: Callable[[int], tuple[int, dict[str, str], float]] = lambda _n: (200, {}, 0.0)
    body: Callable[[int], bytes | list[bytes] | None] = _default_body
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ids(self) -> list[str]:
        return [request.headers["webhook-id"] for request in self.requests]

    async def wait_for(self, count: int, within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} requests, expected {count}")
            await asyncio.sleep(0.01)


@asynccontextmanager
async def receiver(path: str = "/hooks", port: int = 0) -> AsyncIterator[Receiver]:
    state = Receiver(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        state.requests.append(Received(await request.read(), dict(request.headers), arrived))
        number = len(state.requests)
        status, headers, delay = state.answer(number)
        if delay == HOLD:
            await state.release.wait()
        elif delay:
            await asyncio.sleep(delay)
        body = state.body(number)
        if body is None:
            body = b"ok" if status < 300 else b"no"
        if isinstance(body, bytes):
            return web.Response(status=status, headers=headers, body=body)
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        try:
            for piece in body:
                await response.write(piece)
                await asyncio.sleep(PIECE_PAUSE)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the sender stopped reading at its limit
        return response

    app = web.Application()
    app.router.add_post(path, handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{bound}{path}"
    try:
        yield state
    finally:
        state.release.set()
        await runner.cleanup()
