"""Bench-only experiments: monkeypatches applied inside a benchmark server process to
measure what a proposed change to the service would buy, without editing src/. Each one
stands for a change recommended in the bench report; none is imported by the service.

Run one with ``python -m bench --experiment NAME`` and compare with a run without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

EXPERIMENTS: dict[str, Callable[[], None]] = {}


def experiment(function: Callable[[], None]) -> Callable[[], None]:
    EXPERIMENTS[function.__name__.replace("_", "-")] = function
    return function


@experiment
def feed_row_value_cursor() -> None:
    """events.feed: compare (txid, pos) as a row value instead of ``txid > t OR (txid = t AND
    pos > p)``. PostgreSQL cannot turn the OR into an index bound, so it walks the index
    from the store's first event to the cursor (tens of thousands of rows per page)."""
    from orderbridge.db.models import Event
    from orderbridge.events import feed
    from orderbridge.ids import FeedPosition

    def after(position: FeedPosition) -> ColumnElement[bool]:
        return tuple_(Event.txid, Event.pos) > tuple_(position.txid, position.pos)

    def before(position: FeedPosition) -> ColumnElement[bool]:
        return tuple_(Event.txid, Event.pos) < tuple_(position.txid, position.pos)

    feed._position_after = after  # type: ignore[assignment]
    feed._position_before = before  # type: ignore[assignment]


@experiment
def sqlite_inline_txid() -> None:
    """events.recorder: on SQLite, take the txid inside the event's INSERT (a subquery:
    max + 1 for the transaction's first event, max for the next ones) instead of a separate
    SELECT first. Under BEGIN IMMEDIATE nobody else writes, so the values are the same; one
    statement fewer is four aiosqlite thread hops fewer while the write lock is held."""
    from sqlalchemy import func, select

    from orderbridge.db.database import dialect_of
    from orderbridge.db.models import Event
    from orderbridge.events import recorder

    original = recorder.EventRecorder._txid

    async def txid(self: recorder.EventRecorder, session: AsyncSession) -> object:
        if dialect_of(session) == "postgresql":
            return await original(self, session)
        first = session.info.get(recorder._POS_KEY, 1) == 1  # record() counted this event
        largest = func.max(Event.txid)
        value = func.coalesce(largest, 0) + 1 if first else largest
        return select(value).scalar_subquery()

    recorder.EventRecorder._txid = txid  # type: ignore[method-assign]


@experiment
def no_event_listeners() -> None:
    """bootstrap: no webhook-delivery statement per event. Stands for skipping that INSERT
    ... SELECT when the store has no enabled endpoint (known from a short-lived per-store
    cache, like the key cache), the common case at intake; an upper bound of what it buys."""
    from orderbridge import bootstrap

    original = bootstrap.build

    def build(*args: Any, **kwargs: Any) -> bootstrap.Container:
        container = original(*args, **kwargs)
        container.recorder.listeners.clear()
        return container

    bootstrap.build = build


@experiment
def sqlite_no_reset_on_return() -> None:
    """db.database: ``pool_reset_on_return=None`` on the SQLite engines. Every transaction
    already ends in COMMIT or ROLLBACK (Database.transaction/reader), so the pool's extra
    ROLLBACK on check-in is one more aiosqlite thread hop per request for nothing."""
    from orderbridge.db import database

    original = database.create_async_engine

    def create(url: str, **kwargs: Any) -> AsyncEngine:
        if url.startswith("sqlite"):
            kwargs.setdefault("pool_reset_on_return", None)
        return original(url, **kwargs)

    database.create_async_engine = create


@experiment
def dispatcher_wake_on_free() -> None:
    """webhooks.dispatcher: wake the claim loop when a send finishes. Today nothing wakes it
    when an endpoint's slots free up (only new deliveries committed in the same process
    do), so once an endpoint has ``max_concurrency`` in flight the loop finds no candidate
    and sleeps the whole ``poll_interval`` (0.25 s): one endpoint gets at most
    ``max_concurrency`` deliveries per 0.25 s, however fast it answers."""
    from orderbridge.webhooks.dispatcher import WebhookDispatcher

    original = WebhookDispatcher._send

    async def send(self: WebhookDispatcher, *args: Any) -> None:
        try:
            await original(self, *args)
        finally:
            self.wake()

    WebhookDispatcher._send = send  # type: ignore[method-assign]


def apply_experiments(names: list[str]) -> None:
    for name in names:
        EXPERIMENTS[name]()
