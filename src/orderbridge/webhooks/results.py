"""Writing what the dispatcher's attempts gave: delivery rows and attempt rows of a batch,
fenced by the lease token, so that a dispatcher whose lease was taken over writes nothing.
On PostgreSQL in one statement; SQLite, a single writer, takes the portable path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.database import dialect_of
from orderbridge.db.models import WebhookDelivery
from orderbridge.webhooks.claims import Claimed
from orderbridge.webhooks.repository import ATTEMPTS, DELIVERIES, DeliveryStatus


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
    """Delivery rows and attempt rows of a batch, in two executemany statements. Returns the
    ids whose lease was lost (another worker took them over): their rows are untouched.

    On PostgreSQL all of it is one statement over arrays (see ``_WRITE_RESULTS_PG``)."""
    if dialect_of(session) == "postgresql":
        return await _write_results_postgresql(session, results, now=now)
    d = DELIVERIES.c
    params = []
    for result in results:
        if result.succeeded:
            status = DeliveryStatus.SUCCEEDED
        elif result.next_attempt_at is None:
            status = DeliveryStatus.FAILED
        else:
            status = DeliveryStatus.PENDING
        params.append(
            {
                "b_id": result.delivery.id,
                "b_token": result.delivery.lease_token,
                "b_status": status,
                "b_attempts": result.delivery.attempts + 1,
                "b_next": result.next_attempt_at or result.attempted_at,
                "b_code": result.status_code,
                "b_error": result.error,
                "b_updated": now,
                "b_completed": now
                if status in (DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED)
                else None,
            }
        )
    statement = (
        update(DELIVERIES)
        .where(d.id == bindparam("b_id"), d.lease_token == bindparam("b_token"))
        .values(
            status=bindparam("b_status"),
            attempts=bindparam("b_attempts"),
            next_attempt_at=bindparam("b_next"),
            last_status_code=bindparam("b_code"),
            last_error=bindparam("b_error"),
            lease_token=None,
            lease_expires_at=None,
            updated_at=bindparam("b_updated"),
            completed_at=bindparam("b_completed"),
        )
    )
    # Lease check first, so that a stale worker writes neither row nor attempt.
    held = set(await _held(session, results))
    lost = {r.delivery.id for r in results} - held
    kept = [p for p in params if p["b_id"] in held]
    if kept:
        await session.execute(statement.execution_options(synchronize_session=False), kept)
        await session.execute(
            insert(ATTEMPTS),
            [
                {
                    "delivery_id": r.delivery.id,
                    "endpoint_id": r.delivery.endpoint_id,
                    "attempt": r.delivery.attempts + 1,
                    "attempted_at": r.attempted_at,
                    "duration_ms": r.duration_ms,
                    "status_code": r.status_code,
                    "response_body": r.response_body,
                    "error": r.error,
                }
                for r in results
                if r.delivery.id in held
            ],
        )
    return lost


# One round trip per batch, whatever its size: the delivery rows are updated from the
# batch where the lease token still matches (the row lock makes that check atomic), and only
# the updated ones get their attempt row. The alternative, executemany, costs the driver and
# the server one statement per row. The batch travels as one JSON document: measured, the
# driver spent more time dumping twelve arrays element by element than the rest of the
# write took.
_WRITE_RESULTS_PG = text(
    """
WITH results AS (
    SELECT * FROM json_to_recordset(CAST(:results AS json))
        AS r(id bigint, token text, status text, attempt integer, next timestamptz,
             code integer, error text, completed timestamptz, endpoint_id text,
             attempted_at timestamptz, duration_ms integer, body text)
), held AS (
    UPDATE webhook_deliveries AS d
    SET status = r.status, attempts = r.attempt, next_attempt_at = r.next,
        last_status_code = r.code, last_error = r.error, lease_token = NULL,
        lease_expires_at = NULL, updated_at = CAST(:now AS timestamptz),
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
)


async def _write_results_postgresql(
    session: AsyncSession, results: Sequence[Finished], *, now: datetime
) -> set[int]:
    rows: list[dict[str, Any]] = []
    for result in results:
        if result.succeeded:
            status = DeliveryStatus.SUCCEEDED
        elif result.next_attempt_at is None:
            status = DeliveryStatus.FAILED
        else:
            status = DeliveryStatus.PENDING
        delivery = result.delivery
        rows.append(
            {
                "id": delivery.id,
                "token": delivery.lease_token,
                "status": str(status),
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
    written = await session.execute(
        _WRITE_RESULTS_PG, {"results": orjson.dumps(rows).decode(), "now": now}
    )
    held = {row[0] for row in written.all()}
    return {r.delivery.id for r in results} - held


async def _held(session: AsyncSession, results: Sequence[Finished]) -> list[int]:
    """The deliveries of ``results`` whose lease this dispatcher still holds. Looked up by
    primary key and compared here: SQLite plans ``(id, token) IN (...)`` as a scan."""
    tokens = {r.delivery.id: r.delivery.lease_token for r in results}
    d = WebhookDelivery
    query = select(d.id, d.lease_token).where(d.id.in_(list(tokens)))
    if dialect_of(session) == "postgresql":
        query = query.with_for_update()
    rows = await session.execute(query)
    return [row[0] for row in rows.all() if tokens[row[0]] == row[1]]
