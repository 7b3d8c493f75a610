"""Every error becomes ``application/problem+json`` (RFC 9457) with a stable ``code``:
here, and nowhere else."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from orderbridge.errors import OrderbridgeError, ValidationFailed

log = logging.getLogger("orderbridge.api")

PROBLEM = "application/problem+json"

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field_path(location: tuple[Any, ...]) -> str:
    # ("body", "items", 0, "quantity") -> "items.0.quantity"; query/path/header keep their
    # location so that a client can tell a header from a body field.
    parts = [str(p) for p in location]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _domain_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, OrderbridgeError)
    errors = None
    if isinstance(error, ValidationFailed):
        errors = [{"field": e.path, "message": e.message, "code": e.code} for e in error.errors]
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return problem(
        error.status, error.code, error.title, error.detail, errors=errors, headers=headers
    )


async def _request_validation(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    details = error.errors()
    if any(d.get("type") == "json_invalid" for d in details):
        return problem(400, "malformed_json", "Malformed JSON", "the body is not valid JSON")
    in_body = any(d.get("loc", ("",))[0] == "body" for d in details)
    errors = [
        {
            "field": _field_path(tuple(d.get("loc", ()))),
            "message": d.get("msg", "invalid"),
            "code": d.get("type", "invalid"),
        }
        for d in details
    ]
    status = 422 if in_body else 400
    return problem(
        status,
        "validation_error",
        "Validation failed",
        f"{len(errors)} field(s) are invalid",
        errors=errors,
    )


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and str(error.detail).startswith("There was an error parsing"):
        # Invalid UTF-8, nesting too deep: the body is not JSON we can read.
        return problem(400, "malformed_json", "Malformed JSON", "the body is not valid JSON")
    code = _HTTP_CODES.get(error.status_code, "http_error")
    title = code.replace("_", " ").capitalize()
    return problem(
        error.status_code, code, title, str(error.detail), headers=getattr(error, "headers", None)
    )


async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=error)
    return problem(
        500,
        "internal_error",
        "Internal error",
        "something went wrong on our side; nothing was changed",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(OrderbridgeError, _domain_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
