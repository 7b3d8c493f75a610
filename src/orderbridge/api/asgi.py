"""The application built from the environment's settings, for servers that build it in each
of their processes: ``orderbridge serve --workers N`` runs
``uvicorn --factory orderbridge.api.asgi:create`` that way, and so can any ASGI server."""

from __future__ import annotations

from fastapi import FastAPI

from orderbridge.api.app import create_app
from orderbridge.bootstrap import build
from orderbridge.settings import Settings


def create() -> FastAPI:
    return create_app(build(Settings()))
