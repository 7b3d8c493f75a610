"""Writing what the dispatcher's attempts gave: delivery rows and attempt rows of a batch,
fenced by the lease token, so that a dispatcher whose lease was taken over writes nothing.
On PostgreSQL in one statement; SQLite, a single writer, takes the portable path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.database import dialect_of
from orderbridge.webhooks.claims import Claimed, driver_connection, sqlite_time
from orderbridge.webhooks.repository import DeliveryStatus


@dataclass(frozen=True)
class Finished:
    """The result of one attempt, to be written with its batch."""

    delivery: Claimed
    attempted_at: datetime
    duration_ms: int
    status_code: int | None
    response_body: str | None
    error: str | None
    next_attempt_at: datetime | None  # None: no retry (succeeded, gone, or given up)
    succeeded: bool


async def write_results(
    session: AsyncSession, results: Sequence[Finished], *, now: datetime
) -> set[int]:
    """Delivery rows and attempt rows of a batch. Returns the ids whose lease was lost
    (another worker took them over): their rows are untouched.

    On PostgreSQL all of it is one statement over a JSON document (``_WRITE_RESULTS_PG``);
    on SQLite a lease check and two driver-level executemany statements."""
    if dialect_of(session) == "postgresql":
        return await _write_results_postgresql(session, results, now=now)
    return await _write_results_sqlite(session, results, now=now)


def _status(result: Finished) -> str:
    if result.succeeded:
        return DeliveryStatus.SUCCEEDED
    if result.next_attempt_at is None:
        return DeliveryStatus.FAILED
    return DeliveryStatus.PENDING


# SQLite: driver-level statements over the batch as one JSON document, each in one step
# (see webhooks.claims on why). Measured: SQLAlchemy's executemany processed every row's
# parameters in Python (three datetimes each through two type processors), which cost more
# than SQLite's own work for the batch. Times are written as SQLAlchemy writes them on
# SQLite (naive UTC, "YYYY-MM-DD HH:MM:SS.ffffff"), so that they compare and sort with the
# rows it writes.
# The batch as rows of a JSON array, the columns in this order.
_BATCH_COLUMNS = (
    "id", "token", "status", "attempt", "next", "code", "error", "completed", "endpoint_id",
    "attempted_at", "duration_ms", "body",
)  # fmt: skip
_BATCH_SQLITE = "(SELECT {} FROM json_each(?)) AS r".format(
    ", ".join(f"json_extract(value, '$[{n}]') AS {name}" for n, name in enumerate(_BATCH_COLUMNS))
)
_UPDATE_SQLITE = f"""
UPDATE webhook_deliveries AS d
SET status = r.status, attempts = r.attempt, next_attempt_at = r.next,
    last_status_code = r.code, last_error = r.error, lease_token = NULL,
    lease_expires_at = NULL, updated_at = ?, completed_at = r.completed
FROM {_BATCH_SQLITE}
WHERE d.id = r.id AND d.lease_token = r.token
RETURNING webhook_deliveries.id
"""
_INSERT_ATTEMPTS_SQLITE = f"""
INSERT INTO webhook_attempts (delivery_id, endpoint_id, attempt, attempted_at, duration_ms,
    status_code, response_body, error)
SELECT r.id, r.endpoint_id, r.attempt, r.attempted_at, r.duration_ms, r.code, r.body, r.error
FROM {_BATCH_SQLITE} JOIN webhook_deliveries AS d ON d.id = r.id AND d.lease_token = r.token
"""


async def _write_results_sqlite(
    session: AsyncSession, results: Sequence[Finished], *, now: datetime
) -> set[int]:
    return await write_results_sqlite(await driver_connection(session), results, now=now)


async def write_results_sqlite(
    driver: Any, results: Sequence[Finished], *, now: datetime
) -> set[int]:
    """``write_results`` on SQLite's writer connection (aiosqlite's), inside a write
    transaction: two statements, one trip each. The attempt rows go first, for the
    deliveries whose lease token still matches; then the deliveries, whose ids, returned,
    are the ones still held. SQLite has one writer and the transaction holds the write lock,
    so nothing changes the tokens between the two."""
    now_text = sqlite_time(now)
    batch = []
    for result in results:
        delivery = result.delivery
        status = _status(result)
        attempted_at = sqlite_time(result.attempted_at)
        next_at = result.next_attempt_at
        batch.append(
            (
                delivery.id,
                delivery.lease_token,
                status,
                delivery.attempts + 1,
                attempted_at if next_at is None else sqlite_time(next_at),
                result.status_code,
                result.error,
                None if status == DeliveryStatus.PENDING else now_text,
                delivery.endpoint_id,
                attempted_at,
                result.duration_ms,
                result.response_body,
            )
        )
    document = orjson.dumps(batch).decode()
    await driver.execute(_INSERT_ATTEMPTS_SQLITE, (document,))
    held = await driver.execute_fetchall(_UPDATE_SQLITE, (now_text, document))
    return {r.delivery.id for r in results} - {row[0] for row in held}


# One round trip per batch, whatever its size: the delivery rows are updated from the
# batch where the lease token still matches (the row lock makes that check atomic), and only
# the updated ones get their attempt row. The alternative, executemany, costs the driver and
# the server one statement per row. The batch travels as one JSON document: measured, the
# driver spent more time dumping twelve arrays element by element than the rest of the
# write took.
_WRITE_RESULTS_PG = """
WITH results AS (
    SELECT * FROM json_to_recordset(CAST(%(results)s AS json))
        AS r(id bigint, token text, status text, attempt integer, next timestamptz,
             code integer, error text, completed timestamptz, endpoint_id text,
             attempted_at timestamptz, duration_ms integer, body text)
), held AS (
    UPDATE webhook_deliveries AS d
    SET status = r.status, attempts = r.attempt, next_attempt_at = r.next,
        last_status_code = r.code, last_error = r.error, lease_token = NULL,
        lease_expires_at = NULL, updated_at = CAST(%(now)s AS timestamptz),
        completed_at = r.completed
    FROM results AS r
    WHERE d.id = r.id AND d.lease_token = r.token
    RETURNING d.id
)
INSERT INTO webhook_attempts
    (delivery_id, endpoint_id, attempt, attempted_at, duration_ms, status_code,
     response_body, error)
SELECT r.id, r.endpoint_id, r.attempt, r.attempted_at, r.duration_ms, r.code, r.body, r.error
FROM results AS r JOIN held ON held.id = r.id
RETURNING delivery_id
"""


async def _write_results_postgresql(
    session: AsyncSession, results: Sequence[Finished], *, now: datetime
) -> set[int]:
    rows: list[dict[str, Any]] = []
    for result in results:
        status = _status(result)
        delivery = result.delivery
        rows.append(
            {
                "id": delivery.id,
                "token": delivery.lease_token,
                "status": status,
                "attempt": delivery.attempts + 1,
                "next": result.next_attempt_at or result.attempted_at,
                "code": result.status_code,
                "error": result.error,
                "completed": None if status == DeliveryStatus.PENDING else now,
                "endpoint_id": delivery.endpoint_id,
                "attempted_at": result.attempted_at,
                "duration_ms": result.duration_ms,
                "body": result.response_body,
            }
        )
    driver = await driver_connection(session)
    written = await driver.execute(
        _WRITE_RESULTS_PG, {"results": orjson.dumps(rows).decode(), "now": now}
    )
    held = {row[0] for row in await written.fetchall()}
    return {r.delivery.id for r in results} - held
