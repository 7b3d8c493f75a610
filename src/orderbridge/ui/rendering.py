"""Rendering pages: the Jinja2 environment (templates shipped in the package), what every
template gets (the viewer, the current store, the CSRF field, flash messages), and the
filters that show times in the viewer's time zone and amounts in their locale (babel)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_currency, format_decimal
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from orderbridge.ui import sessions
from orderbridge.ui.sessions import flash

__all__ = ["flash", "redirect", "render", "url"]


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


class Formats:
    """Times and amounts for one viewer (UTC and English until someone signs in)."""

    def __init__(self, time_zone: str = "UTC", locale: str = "en") -> None:
        self.zone = _zone(time_zone)
        self.locale = locale

    def money(self, amount: Decimal | str | None, currency: str) -> str:
        if amount is None or amount == "":
            return ""
        try:
            value = Decimal(amount)
        except InvalidOperation:
            return str(amount)
        return str(format_currency(value, currency, locale=self.locale))

    def number(self, value: Decimal | int | float) -> str:
        return str(format_decimal(value, locale=self.locale))

    def when(self, moment: datetime | None, style: str = "medium") -> Markup:
        if moment is None:
            return Markup("")
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        shown = format_datetime(moment, style, tzinfo=self.zone, locale=self.locale)
        return Markup('<time datetime="{}" title="{}">{}</time>').format(
            moment.astimezone(UTC).isoformat(), self.zone.key, shown
        )

    def local_date(self, moment: datetime) -> str:
        """The date in the viewer's zone, as ``<input type=date>`` wants it."""
        return moment.astimezone(self.zone).date().isoformat()


def formats(request: Request) -> Formats:
    viewer = getattr(request.state, "viewer", None)
    if viewer is None:
        return Formats()
    return Formats(viewer.user.time_zone, viewer.user.locale)


def url(request: Request, name: str, /, **params: Any) -> str:
    """The path of a named UI route (with the /account mount), for links and redirects."""
    # The UI app's own routes (request.url_for would search the outer API app), under the
    # path it is mounted at.
    path = request.app.url_path_for(name, **{k: str(v) for k, v in params.items()})
    return str(request.scope.get("root_path", "")) + str(path)


def _route_names(request: Request) -> frozenset[str]:
    names: frozenset[str] = getattr(request.app.state, "route_names", frozenset())
    return names


def _context(request: Request) -> dict[str, Any]:
    fmt = formats(request)
    token = sessions.csrf_token(request)
    return {
        "viewer": getattr(request.state, "viewer", None),
        "store": getattr(request.state, "store", None),
        "csrf_token": token,
        "csrf_field": lambda: Markup('<input type="hidden" name="csrf_token" value="{}">').format(
            token
        ),
        "flashes": sessions.pop_flashes(request),
        "money": fmt.money,
        "number": fmt.number,
        "when": fmt.when,
        "fmt": fmt,
        "url": lambda name, **params: url(request, name, **params),
        "nav_routes": _route_names(request),
    }


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("orderbridge.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


templates = Jinja2Templates(env=_environment(), context_processors=[_context])


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    return templates.TemplateResponse(request, template, context or {}, status_code=status_code)


def redirect(location: str) -> RedirectResponse:
    """After a successful POST: see other (the browser GETs the page)."""
    return RedirectResponse(location, status_code=303)
