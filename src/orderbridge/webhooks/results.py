"""Writing what the dispatcher's attempts gave: delivery rows and attempt rows of a batch,
fenced by the lease token, so that a dispatcher whose lease was taken over writes nothing
(on PostgreSQL in one statement; SQLite, a single writer, takes the portable path), then
what the batch says of each endpoint (``ResultWriter``: last success, failing since,
disabling)."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.clock import Clock
from orderbridge.db.database import Database, dialect_of
from orderbridge.db.models import WebhookEndpoint
from orderbridge.webhooks import claims
from orderbridge.webhooks.claims import Claimed, driver_connection, sqlite_time
from orderbridge.webhooks.policy import RetryPolicy
from orderbridge.webhooks.repository import DeliveryStatus
from orderbridge.webhooks.service import WebhookService

log = logging.getLogger("orderbridge.webhooks")


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


# Under a run of successes, an endpoint's last success is written at most this often.
SUCCESS_NOTE_INTERVAL = 1.0


class ResultWriter:
    """The dispatcher's attempt results between two flushes, and the flush: the batch's
    delivery and attempt rows, then what the batch says of each endpoint (its last success,
    since when it fails, disabled when gone or failing for too long)."""

    def __init__(
        self, db: Database, clock: Clock, service: WebhookService, retry: RetryPolicy
    ) -> None:
        self.db = db
        self.clock = clock
        self.service = service
        self.retry = retry
        self._pending: list[Finished] = []
        self._success_noted: dict[str, float] = {}  # endpoint id -> time.monotonic()

    def add(self, result: Finished) -> None:
        self._pending.append(result)

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        now = self.clock.now()
        if not self.db.is_postgres and all(r.succeeded for r in batch):
            # The usual batch on SQLite, in as few trips to the driver's thread as it takes
            # (see claims.sqlite_writer): a flush holds the one writer connection, and the
            # next claim waits for it.
            async with claims.sqlite_writer(self.db) as driver:
                lost = await write_results_sqlite(driver, batch, now=now)
                successes = self._successes_to_note([r for r in batch if r.delivery.id not in lost])
                if successes:
                    await claims.note_successes_sqlite(driver, successes)
            self._noted(successes)
            if lost:
                log.warning("%s deliveries were taken over by another dispatcher", len(lost))
            return
        async with self.db.transaction() as session:
            lost = await write_results(session, batch, now=now)
            if lost:
                log.warning("%s deliveries were taken over by another dispatcher", len(lost))
            await self._update_endpoints(
                session, [r for r in batch if r.delivery.id not in lost], now
            )

    def _successes_to_note(self, succeeded: Sequence[Finished]) -> dict[str, datetime]:
        """Of endpoints whose batch all succeeded: the last success of those not noted in
        the last ``SUCCESS_NOTE_INTERVAL``."""
        moment = time.monotonic()
        latest: dict[str, datetime] = {}
        for result in succeeded:
            endpoint_id = result.delivery.endpoint_id
            at = latest.get(endpoint_id)
            if at is None or result.attempted_at > at:
                latest[endpoint_id] = result.attempted_at
        return {
            ep: at
            for ep, at in latest.items()
            if moment - self._success_noted.get(ep, -1e9) >= SUCCESS_NOTE_INTERVAL
        }

    def _noted(self, successes: dict[str, datetime]) -> None:
        moment = time.monotonic()
        for endpoint_id in successes:
            self._success_noted[endpoint_id] = moment

    async def _update_endpoints(
        self, session: AsyncSession, results: Sequence[Finished], now: datetime
    ) -> None:
        by_endpoint: dict[str, list[Finished]] = defaultdict(list)
        for result in results:
            by_endpoint[result.delivery.endpoint_id].append(result)
        # An endpoint whose batch all succeeded only needs last_success_at moved and
        # failing_since cleared, without a lock or the ORM, and at most once per
        # SUCCESS_NOTE_INTERVAL: both may lag that long behind the last success.
        successes = self._successes_to_note(
            [
                r
                for outcomes in by_endpoint.values()
                if all(o.succeeded for o in outcomes)
                for r in outcomes
            ]
        )
        for endpoint_id, outcomes in list(by_endpoint.items()):
            if all(r.succeeded for r in outcomes):
                del by_endpoint[endpoint_id]
            else:
                self._success_noted.pop(endpoint_id, None)
        if successes:
            await claims.note_successes(session, successes)
            self._noted(successes)
        if not by_endpoint:
            return
        rows = await session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.id.in_(by_endpoint)).with_for_update()
        )
        for endpoint in rows.all():
            outcomes = sorted(by_endpoint[endpoint.id], key=lambda r: r.attempted_at)
            for result in outcomes:
                if result.succeeded:
                    endpoint.failing_since = None
                    endpoint.last_success_at = result.attempted_at
                else:
                    endpoint.last_failure_at = result.attempted_at
                    if endpoint.failing_since is None:
                        endpoint.failing_since = result.attempted_at
            if any(r.status_code == 410 for r in outcomes):
                await self.service.disable(session, endpoint, "gone", now)
            elif self.retry.should_disable(endpoint.failing_since, now):
                await self.service.disable(session, endpoint, "failing", now)
