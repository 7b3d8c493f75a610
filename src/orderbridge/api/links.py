"""Absolute pagination links that repeat the request's filters (contract §4)."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request


def page_link(request: Request, params: list[tuple[str, str]]) -> str:
    base = str(request.url.replace(query=""))
    return f"{base}?{urlencode(params)}" if params else base
