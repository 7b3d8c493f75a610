"""The bare endpoint every figure is compared with: FastAPI on the same uvicorn settings and
the same database stack (``orderbridge.db.database.Database``: its engines, pools, SQLite
pragmas and ``BEGIN IMMEDIATE`` writer) but none of the service's work.

``POST /orders`` parses the JSON body and does one INSERT of it; ``GET /events/{store_id}``
does one SELECT of a page of the events table after a (txid, pos) cursor, written so that
the index is sought to the cursor, and returns the rows as JSON. No authentication,
validation, ORM session or response model: the floor the service's figures stand on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Query
from sqlalchemy import JSON, Column, MetaData, String, Table, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from orderbridge.db.database import Database
from orderbridge.db.models import Event
from orderbridge.db.types import BigIntPK
from orderbridge.ids import FeedPosition
from orderbridge.runtime import settle_heap

METADATA = MetaData()

BASELINE = Table(
    "bench_baseline",
    METADATA,
    Column("id", BigIntPK, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(128)),
    Column("body", JSON, nullable=False),
)

EVENTS = Event.__table__


def create_baseline_table(engine_url: str) -> None:
    """Called once by the harness (sync driver), outside the timed phases."""
    from sqlalchemy import create_engine

    engine = create_engine(engine_url)
    try:
        METADATA.create_all(engine)
    finally:
        engine.dispose()


def create_baseline_app(database_url: str, *, pool_size: int = 10) -> FastAPI:
    db = Database(database_url, pool_size=pool_size)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settle_heap()  # the service's garbage collector settings (orderbridge.runtime)
        yield
        await db.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/orders", status_code=201)
    async def insert_order(
        order: Annotated[dict[str, Any], Body()],
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> dict[str, int]:
        writer: AsyncEngine = db.write_engine
        async with writer.begin() as connection:
            statement = insert(BASELINE).returning(BASELINE.c.id)
            new_id = await connection.scalar(
                statement, {"idempotency_key": idempotency_key, "body": order}
            )
        return {"id": int(new_id or 0)}

    @app.get("/events/{store_id}")
    async def events_page(
        store_id: str,
        after_event_id: Annotated[str, Query()],
        limit: Annotated[int, Query(ge=1, le=100)] = 100,
    ) -> dict[str, list[dict[str, Any]]]:
        after = FeedPosition.from_event_id(after_event_id)
        columns = (EVENTS.c.txid, EVENTS.c.pos, EVENTS.c.name, EVENTS.c.order_id)
        statement = (
            select(*columns)
            .where(
                EVENTS.c.store_id == store_id,
                # A row-value comparison: both databases seek the index to the cursor.
                tuple_(EVENTS.c.txid, EVENTS.c.pos) > tuple_(after.txid, after.pos),
            )
            .order_by(EVENTS.c.txid, EVENTS.c.pos)
            .limit(limit)
        )
        async with db.read_engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return {"events": [dict(row._mapping) for row in rows]}

    return app
