"""Connections and transactions.

``Database.transaction()`` is the unit of work for every change: it commits when the block
ends and rolls back on error. Services receive the session and never commit themselves.

SQLite has a single writer. Writes therefore go through one connection that starts its
transactions with ``BEGIN IMMEDIATE``: writers queue for that connection in-process (FIFO,
no busy-wait), other processes wait on SQLite's busy timeout, and a transaction holds the
write lock from its first statement, which the event feed relies on (see events.feed).
Reads use a separate pool of connections in WAL mode. PostgreSQL uses one pool for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

# session.info key: names of the in-process loops to wake once the transaction commits
# (the job worker, the webhook dispatcher), so that they need not wait for their next poll.
WAKE = "orderbridge.wake"


def wake_after_commit(session: AsyncSession, name: str) -> None:
    session.info.setdefault(WAKE, set()).add(name)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def normalize_url(url: str, *, async_driver: bool) -> str:
    """Pick our drivers: psycopg 3 for PostgreSQL, aiosqlite (or sqlite3) for SQLite."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite" if async_driver else "sqlite+pysqlite")
    else:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def _sqlite_setup(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (the driver's own BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def dialect_of(session: AsyncSession) -> str:
    """``postgresql`` or ``sqlite``: for the few statements that differ."""
    return session.get_bind().dialect.name


class Database:
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalize_url(url, async_driver=True)
        self.sync_url = normalize_url(url, async_driver=False)
        self.dialect = make_url(self.url).get_backend_name()
        common: dict[str, Any] = {
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
        }
        if self.dialect == "sqlite":
            # Every transaction ends in COMMIT or ROLLBACK already; the pool's own rollback
            # on check-in would be one more trip to the driver's thread per transaction.
            self.write_engine = create_async_engine(
                self.url,
                pool_size=1,
                max_overflow=0,
                pool_timeout=60,
                pool_reset_on_return=None,
                **common,
            )
            self.read_engine = create_async_engine(
                self.url,
                pool_size=max(2, pool_size // 2),
                max_overflow=0,
                pool_reset_on_return=None,
                **common,
            )
            _sqlite_setup(self.write_engine, immediate=True)
            _sqlite_setup(self.read_engine, immediate=False)
        else:
            self.write_engine = create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=False,
                **common,
            )
            self.read_engine = self.write_engine
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self.wakers: dict[str, Callable[[], None]] = {}

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A read-write transaction, committed at the end of the block."""
        async with self._writer() as session:
            async with session.begin():
                yield session
            for name in session.info.get(WAKE, ()):
                waker = self.wakers.get(name)
                if waker is not None:
                    waker()

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction (on SQLite, one that does not take the write lock)."""
        async with self._reader() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()
