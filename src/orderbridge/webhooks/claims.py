"""The dispatcher's delivery queue: claiming due deliveries fairly under a lease, releasing
expired leases, pruning old attempts (``webhooks.results`` writes what the attempts gave).
The few statements that PostgreSQL can do in one round trip are raw SQL here; SQLite, a
single writer, takes the portable path."""

from __future__ import annotations

import secrets as random_secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

import orjson
from sqlalchemy import (
    bindparam,
    case,
    delete,
    func,
    null,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.database import Database
from orderbridge.db.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSecret,
)
from orderbridge.events.render import EventRecord
from orderbridge.webhooks.repository import (
    DELIVERIES,
    WEBHOOK_ENDPOINTS,
    DeliveryStatus,
)


@dataclass(frozen=True)
class Claimed:
    id: int
    endpoint_id: str
    event_id: int
    attempts: int  # before this attempt
    lease_token: str


# SQLite's claim statements are driver-level SQL with JSON arrays for the id lists, and each
# one returns at most one row, its rows aggregated into a JSON array. Measured: a claim runs
# many times a second, and SQLAlchemy spent more per claim rendering the expanding IN lists
# and converting every returned row's times than SQLite spent running the statements. And
# the sqlite3 module releases the GIL around every step, i.e. every row: with the event
# loop's thread busy sending, the driver's thread then waited for the GIL once per row
# (claims of 40 ms, result writes of 60 ms, lanes running dry meanwhile); one step per
# statement waits once. Times are compared and written as SQLAlchemy stores them on SQLite
# (``sqlite_time``).

# Due deliveries, oldest due first, of enabled endpoints not busy in this process; of an
# ordered endpoint only the oldest unfinished one: [[id, endpoint id, ordered], ...].
_DUE_SQLITE = """
SELECT json_group_array(json_array(id, endpoint_id, ordered)) FROM (
    SELECT d.id, d.endpoint_id, e.ordered
    FROM webhook_deliveries AS d JOIN webhook_endpoints AS e ON e.id = d.endpoint_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND e.enabled = 1
        AND (e.ordered = 0 OR NOT EXISTS (
            SELECT 1 FROM webhook_deliveries AS earlier
            WHERE earlier.endpoint_id = d.endpoint_id AND earlier.id < d.id
                AND earlier.status IN ('pending', 'sending')
        ))
        AND d.endpoint_id NOT IN (SELECT value FROM json_each(?))
    ORDER BY d.next_attempt_at, d.id
    LIMIT ?
)
"""

# SQLite has a single writer: the picked rows cannot be taken by another worker between the
# candidates query and this statement, which runs in the same write transaction. The
# deliveries come back with their events (a JSON array each).
_LEASE_SQLITE = """
UPDATE webhook_deliveries
SET status = 'sending', lease_token = ?, lease_expires_at = ?, updated_at = ?
WHERE id IN (SELECT value FROM json_each(?)) AND status = 'pending'
RETURNING id, endpoint_id, event_id, attempts, (
    SELECT json_array(ev.txid, ev.pos, ev.store_id, ev.order_id, ev.name, ev.occurred_at,
        ev.entity_id, ev.external_order_id, ev.external_order_number)
    FROM events AS ev WHERE ev.id = webhook_deliveries.event_id
)
"""

_QUEUE_HEADS_SQLITE = """
SELECT endpoint_id, min(id) FROM webhook_deliveries
WHERE endpoint_id IN (SELECT value FROM json_each(?)) AND status IN ('pending', 'sending')
GROUP BY endpoint_id
"""


def sqlite_time(moment: datetime) -> str:
    """A datetime as SQLAlchemy stores a ``UTCDateTime`` on SQLite (naive UTC text that
    sorts and compares with the rows it writes)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


class EventRow(NamedTuple):
    """An event as rendering reads it (``EventRecord``), from a driver-level row."""

    id: int
    txid: int
    pos: int
    store_id: str
    order_id: int | None
    name: str
    occurred_at: datetime
    entity_id: str | None
    external_order_id: str | None
    external_order_number: str | None


_QUEUE_HEADS = (
    select(DELIVERIES.c.endpoint_id, func.min(DELIVERIES.c.id))
    .where(
        DELIVERIES.c.endpoint_id.in_(bindparam("endpoints", expanding=True)),
        DELIVERIES.c.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
    )
    .group_by(DELIVERIES.c.endpoint_id)
)


# PostgreSQL: the whole claim in one statement. Each unordered endpoint offers its oldest
# due deliveries, as many as its free slots (its live max_concurrency less what this
# process has in flight), through a LATERAL index scan per endpoint; each ordered endpoint
# its head when that is due and nothing before it is unfinished. The oldest ``limit`` of
# those are locked (skipping other workers' picks), leased, and returned with their event.
# An endpoint's own deliveries are taken by next_attempt_at alone (ties in index order, for
# deliveries of one transaction their insertion order), so that the scan stops after its
# free slots: measured, ordering by (next_attempt_at, id), which no index holds, read and
# sorted the endpoint's whole due backlog per claim (9 ms at 20,000 deliveries).
# Driver-level (psycopg placeholders), for the reasons given for SQLite below.
_CLAIM_PG = """
WITH flying AS (
    SELECT * FROM unnest(CAST(%(flying_ids)s AS text[]), CAST(%(flying_counts)s AS integer[]))
        AS f(endpoint_id, n)
), open AS (
    SELECT e.id, e.max_concurrency - COALESCE(f.n, 0) AS free
    FROM webhook_endpoints AS e LEFT JOIN flying AS f ON f.endpoint_id = e.id
    WHERE e.enabled AND NOT e.ordered AND e.max_concurrency > COALESCE(f.n, 0)
), candidates AS (
    SELECT due.id, due.next_attempt_at FROM open CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at FROM webhook_deliveries AS d
        WHERE d.endpoint_id = open.id AND d.status = 'pending' AND d.next_attempt_at <= %(now)s
        ORDER BY d.next_attempt_at
        LIMIT open.free
    ) AS due
    UNION ALL
    SELECT d.id, d.next_attempt_at
    FROM webhook_deliveries AS d JOIN webhook_endpoints AS e ON e.id = d.endpoint_id
    WHERE e.enabled AND e.ordered AND d.status = 'pending' AND d.next_attempt_at <= %(now)s
        AND NOT EXISTS (
            SELECT 1 FROM webhook_deliveries AS earlier
            WHERE earlier.endpoint_id = d.endpoint_id AND earlier.id < d.id
                AND earlier.status IN ('pending', 'sending')
        )
    ORDER BY next_attempt_at, id
    LIMIT %(limit)s
), locked AS (
    SELECT d.id FROM webhook_deliveries AS d
    WHERE d.id IN (SELECT id FROM candidates) AND d.status = 'pending'
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE webhook_deliveries AS d
    SET status = 'sending', lease_token = %(token)s, lease_expires_at = %(until)s,
        updated_at = %(now)s
    FROM locked WHERE d.id = locked.id
    RETURNING d.id, d.endpoint_id, d.event_id, d.attempts
)
SELECT leased.id, leased.endpoint_id, leased.event_id, leased.attempts,
    ev.txid, ev.pos, ev.store_id, ev.order_id, ev.name, ev.occurred_at, ev.entity_id,
    ev.external_order_id, ev.external_order_number
FROM leased JOIN events AS ev ON ev.id = leased.event_id
ORDER BY leased.id
"""


async def claim_due_postgresql(
    driver: Any,
    *,
    now: datetime,
    limit: int,
    in_flight: dict[str, int],
    lease_for: timedelta,
) -> list[tuple[Claimed, EventRecord]]:
    """Claim up to ``limit`` due deliveries in one statement (PostgreSQL only), with the
    same choice as ``due_candidates`` followed by ``lease``: per-endpoint slots, ordered
    endpoints one at a time, other workers' picks skipped. On a ``postgres_autocommit``
    connection: the statement is its own transaction."""
    token = random_secrets.token_hex(16)
    # n may be negative: an endpoint allowed to claim ahead of its free slots.
    flying = [(ep, n) for ep, n in in_flight.items() if n != 0]
    cursor = await driver.execute(
        _CLAIM_PG,
        {
            "flying_ids": [ep for ep, _ in flying],
            "flying_counts": [n for _, n in flying],
            "now": now,
            "limit": limit,
            "token": token,
            "until": now + lease_for,
        },
    )
    return [
        (
            Claimed(row[0], row[1], row[2], row[3], token),
            cast(EventRecord, EventRow(row[2], *row[4:])),
        )
        for row in await cursor.fetchall()
    ]


@asynccontextmanager
async def postgres_autocommit(db: Database) -> AsyncIterator[Any]:
    """A PostgreSQL driver connection (psycopg's) in autocommit mode, for a claim that is
    one statement. Measured: every round trip waits for a turn of the event loop, which the
    senders keep busy (10-20 ms a turn at 5,000 deliveries/s), and a claim in a session's
    transaction made three (psycopg's BEGIN, the statement, COMMIT): 45-65 ms, during which
    the senders used up all that was claimed ahead. One round trip instead."""
    async with db.write_engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        raw = await connection.get_raw_connection()
        yield raw.driver_connection


@asynccontextmanager
async def sqlite_writer(db: Database) -> AsyncIterator[Any]:
    """SQLite's writer connection (aiosqlite's, queued for like every writer's) inside
    ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error. Measured: every trip to
    the driver's thread waits for a turn of the event loop, which the senders keep busy
    (4-5 ms a trip at 4,000 deliveries/s); a claim through ``Database.transaction`` made
    seven (SQLAlchemy's BEGIN alone is three: cursor, execute, close) and took 40 ms, long
    enough for the lanes it was topping up to run dry. Here: BEGIN, the statements, COMMIT,
    one trip each."""
    async with db.write_engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.execute("BEGIN IMMEDIATE")
        try:
            yield driver
        except BaseException:
            # Queued behind whatever the driver's thread is still running, and ahead of
            # the next writer's BEGIN, even if this task is cancelled meanwhile.
            await driver.rollback()
            raise
        await driver.execute("COMMIT")


async def due_candidates(
    driver: Any, *, now: datetime, limit: int, busy: Sequence[str]
) -> list[tuple[int, str, bool]]:
    """(delivery id, endpoint id, endpoint ordered) of due deliveries, oldest due first,
    skipping endpoints that are disabled or already busy in this process (SQLite, on the
    ``sqlite_writer`` connection).

    Of an ordered endpoint only the oldest unfinished delivery is a candidate: the others
    cannot go before it, and a backlog of them waiting behind a retry must not fill the
    ``limit`` rows and hide every other endpoint's due deliveries. (PostgreSQL claims with
    ``claim_due_postgresql`` instead, which also caps each endpoint at its free slots.)"""
    rows = await driver.execute_fetchall(
        _DUE_SQLITE, (sqlite_time(now), orjson.dumps(list(busy)).decode(), limit)
    )
    return [(row[0], row[1], bool(row[2])) for row in orjson.loads(rows[0][0])]


async def queue_heads(driver: Any, endpoint_ids: Sequence[str]) -> dict[str, int]:
    """For ordered endpoints: the oldest delivery not yet finished, which alone may go
    (SQLite, on the ``sqlite_writer`` connection)."""
    rows = await driver.execute_fetchall(
        _QUEUE_HEADS_SQLITE, (orjson.dumps(list(endpoint_ids)).decode(),)
    )
    return {row[0]: row[1] for row in rows}


async def lease_sqlite(
    driver: Any, ids: Sequence[int], *, now: datetime, lease_for: timedelta
) -> list[tuple[Claimed, EventRecord]]:
    """Mark the picked deliveries as sending under a fresh lease and return them with their
    events, in delivery order (SQLite, on the ``sqlite_writer`` connection: its single
    writer cannot have given them to another worker)."""
    if not ids:
        return []
    token = random_secrets.token_hex(16)
    picked = orjson.dumps(list(ids)).decode()
    until = sqlite_time(now + lease_for)
    rows = await driver.execute_fetchall(_LEASE_SQLITE, (token, until, sqlite_time(now), picked))
    claimed = []
    for row in sorted(rows):
        ev = orjson.loads(row[4])
        at = datetime.fromisoformat(ev[5]).replace(tzinfo=UTC)
        event = EventRow(row[2], ev[0], ev[1], ev[2], ev[3], ev[4], at, ev[6], ev[7], ev[8])
        claimed.append((Claimed(row[0], row[1], row[2], row[3], token), cast(EventRecord, event)))
    return claimed


async def driver_connection(session: AsyncSession) -> Any:
    """The session's driver connection (aiosqlite or psycopg's async one), inside the
    session's transaction. Measured on SQLite: a statement through SQLAlchemy's aiosqlite
    adapter is four trips to the driver's thread (cursor, execute, fetch, close), each one a
    wake-up of the event loop, and every row becomes a ``Row``; ``execute_fetchall`` on the
    driver's connection is one trip and plain tuples."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def driver_json(session: AsyncSession, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
    """The JSON array a driver-level SQLite statement returns as its one value (``?``
    placeholders), in one trip to the driver's thread."""
    driver = await driver_connection(session)
    rows = await driver.execute_fetchall(sql, parameters)
    return cast(list[Any], orjson.loads(rows[0][0]))


_NOTE_SUCCESS_SQLITE = """
UPDATE webhook_endpoints
SET last_success_at = CASE WHEN last_success_at IS NULL OR last_success_at < ?1 THEN ?1
        ELSE last_success_at END,
    failing_since = CASE WHEN last_failure_at IS NULL OR last_failure_at <= ?1 THEN NULL
        ELSE failing_since END
WHERE id = ?2
"""


async def note_successes_sqlite(driver: Any, last_success: dict[str, datetime]) -> None:
    """``note_successes`` on the ``sqlite_writer`` connection, in one trip."""
    await driver.executemany(
        _NOTE_SUCCESS_SQLITE, [(sqlite_time(at), ep) for ep, at in sorted(last_success.items())]
    )


async def release_expired(session: AsyncSession, *, now: datetime) -> int:
    """Deliveries whose worker died mid-send go back to pending (they will be sent again:
    at least once, with the same webhook-id)."""
    d = WebhookDelivery
    result = await session.execute(
        update(d)
        .where(d.status == DeliveryStatus.SENDING, d.lease_expires_at < now)
        .values(
            status=DeliveryStatus.PENDING,
            lease_token=None,
            lease_expires_at=None,
            next_attempt_at=now,
            updated_at=now,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def release(session: AsyncSession, deliveries: Sequence[Claimed], *, now: datetime) -> int:
    """Give claimed deliveries that were never sent back to pending at once (a dispatcher
    stopping with deliveries claimed ahead), where this claim still holds their lease."""
    d = WebhookDelivery
    result = await session.execute(
        update(d)
        .where(
            tuple_(d.id, d.lease_token).in_([(c.id, c.lease_token) for c in deliveries]),
            d.status == DeliveryStatus.SENDING,
        )
        .values(
            status=DeliveryStatus.PENDING,
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def endpoint_settings(session: AsyncSession, ids: Iterable[str]) -> list[Any]:
    """What the dispatcher needs to send to these endpoints, as plain rows."""
    e = WebhookEndpoint
    rows = await session.execute(
        select(e.id, e.url, e.ordered, e.max_concurrency, e.rate_limit).where(e.id.in_(set(ids)))
    )
    return list(rows.all())


async def live_secret_rows(
    session: AsyncSession, ids: Iterable[str], *, now: datetime
) -> list[Any]:
    """(id, endpoint_id, secret_encrypted, expires_at) of the endpoints' live secrets,
    newest first."""
    s = WebhookSecret
    rows = await session.execute(
        select(s.id, s.endpoint_id, s.secret_encrypted, s.expires_at)
        .where(s.endpoint_id.in_(set(ids)), or_(s.expires_at.is_(None), s.expires_at > now))
        .order_by(s.id.desc())
    )
    return list(rows.all())


async def note_successes(session: AsyncSession, last_success: dict[str, datetime]) -> None:
    """Endpoints that answered 2xx: ``last_success_at`` moves forward and ``failing_since``
    is cleared, unless a failure was recorded after that success (by another worker)."""
    e = WEBHOOK_ENDPOINTS.c
    at = bindparam("n_at", type_=e.last_success_at.type)
    statement = (
        update(WEBHOOK_ENDPOINTS)
        .where(e.id == bindparam("n_id"))
        .values(
            last_success_at=case(
                (or_(e.last_success_at.is_(None), e.last_success_at < at), at),
                else_=e.last_success_at,
            ),
            failing_since=case(
                (or_(e.last_failure_at.is_(None), e.last_failure_at <= at), null()),
                else_=e.failing_since,
            ),
        )
    )
    await session.execute(
        statement.execution_options(synchronize_session=False),
        [{"n_id": ep, "n_at": at_} for ep, at_ in sorted(last_success.items())],
    )


async def prune_attempts(session: AsyncSession, *, before: datetime, batch: int = 5000) -> int:
    oldest = select(WebhookAttempt.id).where(WebhookAttempt.attempted_at < before).limit(batch)
    result = await session.execute(
        delete(WebhookAttempt).where(WebhookAttempt.id.in_(oldest.scalar_subquery()))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
