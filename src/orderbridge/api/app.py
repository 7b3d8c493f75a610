"""The ASGI application. ``create_app`` takes a built container; the lifespan starts the
embedded worker when the settings ask for one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from orderbridge import __version__
from orderbridge.api import (
    checkout,
    connections,
    errors,
    events,
    openapi,
    orders,
    processing,
    refunds,
    webhooks,
)
from orderbridge.api.auth import Authenticator
from orderbridge.bootstrap import Container
from orderbridge.runtime import settle_heap, start_background
from orderbridge.settings import WorkerMode
from orderbridge.ui import app as ui_app

DESCRIPTION = """\
Order API v2, wire-compatible with the Glopal Order API v2, plus the checkout intake.

Authenticate with `Authorization: Bearer <key>`: merchant keys (`GL.…`) read and act on
their store's orders; checkout keys submit orders. A key used on another store's paths gets
`404`. Errors are `application/problem+json` with a stable `code`.
"""


def create_app(container: Container, *, manage_container: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = []
        settle_heap()  # API processes too: a request allocates as much as a delivery
        if container.settings.worker_mode is WorkerMode.EMBEDDED:
            tasks = start_background(container, stop)
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            container.db.wakers.clear()
            if manage_container:
                await container.close()

    app = FastAPI(
        title="orderbridge",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.authenticator = Authenticator(container)
    errors.install(app)
    openapi.install(app)
    app.include_router(checkout.router)
    app.include_router(events.router)
    app.include_router(orders.router)
    app.include_router(processing.router)
    app.include_router(refunds.router)
    app.include_router(webhooks.router)
    app.include_router(connections.router)
    # The Merchant Account: its own application, so its pages stay out of the API's
    # OpenAPI document and answer errors with HTML.
    app.mount(ui_app.MOUNT, ui_app.create_ui(container), name="account")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(ui_app.MOUNT + "/", status_code=307)

    @app.get("/healthz", tags=["operations"], summary="Liveness and database check")
    async def health() -> dict[str, str]:
        async with container.db.reader() as session:
            await session.connection()
        return {"status": "ok"}

    return app
