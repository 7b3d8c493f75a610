"""Helpers shared by the command modules."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import click

from orderbridge.bootstrap import Container, build
from orderbridge.db.migrate import upgrade
from orderbridge.errors import OrderbridgeError, ValidationFailed
from orderbridge.settings import Settings

T = TypeVar("T")


def load_settings() -> Settings:
    return Settings()


def prepare_database(settings: Settings) -> None:
    """The embedded default (SQLite) upgrades itself, for the server and for every command, so
    that a first ``orderbridge stores create`` works on a fresh data folder; PostgreSQL is
    upgraded explicitly (``orderbridge db upgrade``)."""
    if not settings.database_url or settings.database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        container = build(settings)
        upgrade(container.db.sync_url)
        asyncio.run(container.close())


def run_serving(main: Coroutine[Any, Any, T]) -> T:
    """The event loop of a long-running process (the API, the worker): uvloop when installed
    (``uvicorn[standard]`` brings it on Linux, and uvicorn picks it itself), else asyncio's.
    Measured on the webhook sender: 0.10 ms of CPU per POST against 0.13 ms."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def run(
    work: Callable[[Container], Awaitable[T]],
    settings: Settings | None = None,
    *,
    serving: bool = False,
) -> T:
    """Run ``work`` with a container; ``serving`` for the long-running commands."""
    settings = settings or load_settings()
    prepare_database(settings)

    async def main() -> T:
        container = build(settings)
        try:
            return await work(container)
        finally:
            await container.close()

    try:
        return run_serving(main()) if serving else asyncio.run(main())
    except ValidationFailed as error:
        fields = "; ".join(f"{e.path}: {e.message}" for e in error.errors)
        raise click.ClickException(f"{error.code}: {fields}") from None
    except OrderbridgeError as error:
        raise click.ClickException(f"{error.code}: {error.detail}") from None


def emit(as_json: bool, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data, indent=2) if as_json else text)
