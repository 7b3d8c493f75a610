"""The Merchant Account application: mounted at ``/account`` by ``api.app.create_app``.

A separate FastAPI instance keeps the pages out of the API's OpenAPI document and gives
them HTML error pages; it shares the container (database, clock, services) with the API."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, Depends, FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from orderbridge.bootstrap import Container
from orderbridge.ui import (
    account,
    dashboard,
    errors,
    order_actions,
    orders,
    settings,
    settings_deliveries,
    settings_keys,
    settings_webhooks,
)
from orderbridge.ui.deps import csrf_protect
from orderbridge.ui.sessions import COOKIE, session_secret

MOUNT = "/account"

# Every page module's router. U2's settings and dashboard routers are added here too.
ROUTERS: list[APIRouter] = [
    account.router,
    orders.router,
    order_actions.router,
    dashboard.router,
    settings.router,
    settings_keys.router,
    settings_webhooks.router,
    settings_deliveries.router,
]


def create_ui(container: Container) -> FastAPI:
    settings = container.settings
    ui = FastAPI(
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(csrf_protect)],
    )
    ui.state.container = container
    ui.state.login_throttle = account.new_throttle(container)
    ui.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=COOKIE,
        max_age=int(settings.session_max_age_hours * 3600),
        path=MOUNT,
        same_site="lax",
        https_only=settings.session_https_only,
    )
    errors.install(ui)
    ui.mount(
        "/static",
        StaticFiles(directory=str(files("orderbridge.ui") / "static")),
        name="static",
    )
    for router in ROUTERS:
        ui.include_router(router)
    # What the navigation may link to (the settings and dashboard pages exist or not).
    ui.state.route_names = frozenset(
        getattr(route, "name", "") for router in ROUTERS for route in router.routes
    )
    return ui
