"""Errors in the Merchant Account are pages, not problem+json: a sign-in redirect when the
session is missing, a 404 page for a store or order the user cannot see (the same page as
for one that does not exist), 403 for staff on an owner's page or a rejected CSRF token."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from orderbridge.errors import OrderbridgeError
from orderbridge.ui.deps import LoginRequired
from orderbridge.ui.rendering import render, url

log = logging.getLogger("orderbridge.ui")

_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    422: "Invalid request",
}


def error_page(request: Request, status: int, message: str, title: str | None = None) -> Response:
    return render(
        request,
        "error.html",
        {"status": status, "title": title or _TITLES.get(status, "Error"), "message": message},
        status_code=status,
    )


async def _domain(request: Request, error: Exception) -> Response:
    assert isinstance(error, OrderbridgeError)
    if isinstance(error, LoginRequired):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        location = url(request, "login_form") + "?" + urlencode({"next": target})
        return RedirectResponse(location, status_code=303)
    if error.status == 404:
        return error_page(request, 404, "There is no such page, or it is not one of yours.")
    return error_page(request, error.status, error.detail, error.title)


async def _http(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    return error_page(request, error.status_code, str(error.detail))


async def _validation(request: Request, error: Exception) -> Response:
    # Path or query parameters the pages could not read (a malformed link).
    return error_page(request, 400, "This link is not valid.")


def install(app: FastAPI) -> None:
    app.add_exception_handler(OrderbridgeError, _domain)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
