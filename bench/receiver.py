"""The webhook receiver of the benchmark: ``python -m bench.receiver --fd N [--slow-ms MS]``.

An aiohttp server in its own process (uvloop when installed, no access log) on a listening
socket inherited from the harness. ``POST /hook`` answers 200 with an empty body at once;
``POST /slow`` waits ``--slow-ms`` first (the slow endpoint of the fairness check). Both
answer 400 to a request without the three Standard Webhooks headers, so that an unsigned
sender cannot look fast. ``GET /stats`` returns what it received, per path.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from collections import Counter

from aiohttp import web

from bench.load import run_with_fast_loop

SIGNED = ("webhook-id", "webhook-timestamp", "webhook-signature")


def create_receiver(slow_seconds: float) -> web.Application:
    received: Counter[str] = Counter()

    async def answer(request: web.Request, kind: str) -> web.Response:
        await request.read()
        if not all(name in request.headers for name in SIGNED):
            received["unsigned"] += 1
            return web.Response(status=400)
        received[kind] += 1
        return web.Response()

    async def hook(request: web.Request) -> web.Response:
        return await answer(request, "hook")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(slow_seconds)
        return await answer(request, "slow")

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(dict(received))

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/slow", slow)
    app.router.add_get("/healthz", health)
    app.router.add_get("/stats", stats)
    return app


async def _serve(app: web.Application, listener: socket.socket) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, listener, backlog=2048).start()
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.receiver")
    parser.add_argument("--fd", type=int, required=True, help="inherited listening socket")
    parser.add_argument("--slow-ms", type=float, default=100.0)
    args = parser.parse_args()
    listener = socket.socket(fileno=args.fd)
    run_with_fast_loop(_serve(create_receiver(args.slow_ms / 1000), listener))


if __name__ == "__main__":
    main()
