"""The webhook dispatcher: claims due deliveries fairly, sends them concurrently with
aiohttp (measured: about 10× the throughput of httpx here), and writes results in batches.

Fairness: a claim skips endpoints that already have ``max_concurrency`` requests in flight
in this process, and takes at most the free slots of each endpoint, so one slow or failing
endpoint never fills the dispatcher. An ordered endpoint only ever has its oldest unfinished
delivery in flight. Limits (concurrency, rate) hold per dispatcher process.

Durability: a claimed delivery is ``sending`` under a lease. A dispatcher that dies leaves
the lease to expire; the delivery goes back to ``pending`` and is sent again with the same
``webhook-id`` (at least once). A dispatcher whose lease was taken over writes nothing.

Freshness: an endpoint's URL, limits and signing secrets are cached for a second
(``webhooks.targets``). Under a run of successes, an
endpoint's ``last_success_at`` (and the clearing of ``failing_since``) is written at most
once per ``results.SUCCESS_NOTE_INTERVAL`` (1 s); failures are written with every batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
import orjson

from orderbridge.clock import Clock
from orderbridge.crypto import SecretBox
from orderbridge.db.database import Database
from orderbridge.events.render import EventRecord, render_event
from orderbridge.outbound.guard import OutboundPolicy, find_unsafe_target, open_session
from orderbridge.webhooks import claims
from orderbridge.webhooks.claims import Claimed
from orderbridge.webhooks.policy import (
    AttemptOutcome,
    AttemptResult,
    RetryPolicy,
    parse_retry_after,
)
from orderbridge.webhooks.results import Finished, ResultWriter
from orderbridge.webhooks.service import WebhookService
from orderbridge.webhooks.targets import AHEAD_SLOTS, Target, Targets

log = logging.getLogger("orderbridge.webhooks")

USER_AGENT = "orderbridge-webhooks/1"


def default_batch_size(db: Database) -> int:
    """How many deliveries a claim takes at most. Claims run one after another, so a fast
    endpoint gets at most a batch per claim. Measured on PostgreSQL at 5,000 deliveries/s:
    claims of 200 took 25-65 ms beside the senders, and the lanes ran dry while each was
    under way; claims of 500 (about 400, what the lane lacked) kept up: 5,500-6,700/s. On
    SQLite 200 sends as fast as 500 (5,835 and 5,874/s), and a claim holds the one writer,
    which the checkout's intake waits for: 30 ms at the median instead of 44."""
    return 500 if db.is_postgres else 200


@dataclass(frozen=True)
class DispatcherOptions:
    batch_size: int | None = None  # None: default_batch_size for the database
    max_in_flight: int = 512
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    response_limit: int = 4096
    poll_interval: float = 0.25
    flush_interval: float = 0.1
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    attempt_retention: timedelta = timedelta(days=30)
    maintenance_interval: float = 30.0

    @property
    def lease(self) -> timedelta:
        """Long enough for a delivery claimed ahead to wait behind ``AHEAD_SLOTS`` requests
        of its endpoint and then be sent, each taking up to the total timeout."""
        return timedelta(seconds=max(60.0, (AHEAD_SLOTS + 2) * self.total_timeout))


# A dispatcher holds at most this many times ``max_in_flight`` claimed deliveries.
PREFETCH_FACTOR = 3


class WebhookDispatcher:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        box: SecretBox,
        policy: OutboundPolicy,
        service: WebhookService,
        options: DispatcherOptions | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.box = box
        self.policy = policy
        self.service = service
        self.options = options or DispatcherOptions()
        self._batch_size = self.options.batch_size or default_batch_size(db)
        # Per endpoint: deliveries held (claimed, in flight or waiting in its lane), the
        # most it may hold (its concurrency plus what is claimed ahead), the waiting ones,
        # and the sender tasks working through them (at most its concurrency).
        self._held: dict[str, int] = defaultdict(int)
        self._lanes: dict[str, deque[tuple[Claimed, EventRecord]]] = defaultdict(deque)
        self._senders: dict[str, int] = defaultdict(int)
        self._total_held = 0
        self._running = 0  # sender tasks
        self._starved: set[str] = set()  # lanes with work but no room for a sender
        self._stopping = False
        self._news = True  # new deliveries may be due (the wake of a committed event)
        self._targets = Targets(box)
        self._tasks: set[asyncio.Task[None]] = set()
        self._writer = ResultWriter(db, clock, service, self.options.retry)
        self._wakeup = asyncio.Event()
        self._last_maintenance = 0.0
        self._session: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        """New deliveries were committed: claim now rather than at the next poll."""
        self._news = True
        self._wakeup.set()

    def _worth_claiming(self, polled: bool) -> bool:
        """Whether a claim may find work: at a poll or after new deliveries always; after
        a sender's wake only if some endpoint is still below its refill mark. Measured:
        without this check, the wakes of senders finishing while a claim was under way
        made the loop claim again for endpoints that claim had already topped up, a query
        that finds nothing and, on SQLite, scans their whole backlog to find it."""
        if polled or self._news:
            return True
        return any(n <= self._targets.refill_at(ep) for ep, n in self._held.items())

    # ---- loops ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        async with self._http():
            leaving = asyncio.Event()
            flusher = asyncio.create_task(self._flush_loop(stop, leaving))
            try:
                polled = True
                while not stop.is_set():
                    self._wakeup.clear()
                    await self._maintain()
                    more = False
                    if self._worth_claiming(polled):
                        self._news = False
                        _, more = await self._claim_and_send()
                    if more:
                        continue
                    polled = False
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), self.options.poll_interval)
                    except TimeoutError:
                        polled = True
            finally:
                # Senders finish the request they are making; what waits in the lanes goes
                # back to pending at once rather than when its lease expires.
                self._stopping = True
                if self._tasks:
                    await asyncio.gather(*self._tasks, return_exceptions=True)
                await self._release_waiting()
                # Let the flusher finish the batch it may be writing: cancelling it mid-write
                # would roll those results back (sent again later, their attempts lost).
                leaving.set()
                await flusher
                await self.flush()

    async def _release_waiting(self) -> None:
        waiting = [delivery for lane in self._lanes.values() for delivery, _ in lane]
        self._lanes.clear()
        if not waiting:
            return
        try:
            async with self.db.transaction() as session:
                await claims.release(session, waiting, now=self.clock.now())
        except Exception:
            log.exception(
                "releasing %s claimed deliveries failed; their leases will expire", len(waiting)
            )
        for delivery in waiting:
            self._held[delivery.endpoint_id] -= 1
            self._total_held -= 1

    async def run_until_idle(self, max_rounds: int = 1000) -> int:
        """Send every due delivery and write the results; for tests and the CLI."""
        sent = 0
        async with self._http():
            for _ in range(max_rounds):
                claimed, _ = await self._claim_and_send()
                if self._tasks:
                    await asyncio.gather(*self._tasks, return_exceptions=True)
                await self.flush()
                if not claimed:
                    break
                sent += claimed
        return sent

    @contextlib.asynccontextmanager
    async def _http(self):  # type: ignore[no-untyped-def]
        timeout = aiohttp.ClientTimeout(
            total=self.options.total_timeout, sock_connect=self.options.connect_timeout
        )
        async with open_session(
            self.policy, timeout, limit=self.options.max_in_flight, limit_per_host=0
        ) as session:
            self._session = session
            try:
                yield
            finally:
                self._session = None

    async def _flush_loop(self, stop: asyncio.Event, leaving: asyncio.Event) -> None:
        while not (stop.is_set() or leaving.is_set()):
            await asyncio.sleep(self.options.flush_interval)
            try:
                await self.flush()
            except Exception:
                log.exception("writing delivery results failed; their leases will expire")

    async def _maintain(self) -> None:
        if time.monotonic() - self._last_maintenance < self.options.maintenance_interval:
            return
        self._last_maintenance = time.monotonic()
        now = self.clock.now()
        async with self.db.transaction() as session:
            released = await claims.release_expired(session, now=now)
            pruned = await claims.prune_attempts(
                session, before=now - self.options.attempt_retention
            )
        if released or pruned:
            log.info("released %s expired deliveries, pruned %s old attempts", released, pruned)

    # ---- claiming -------------------------------------------------------------------------

    async def _claim_and_send(self) -> tuple[int, bool]:
        """Claim due deliveries and hand them to their endpoints' lanes: (how many, whether
        to claim again at once rather than wait for free room or the poll)."""
        room = PREFETCH_FACTOR * self.options.max_in_flight - self._total_held
        if room <= 0:
            return 0, False
        limit = min(room, self._batch_size)
        now = self.clock.now()
        if self.db.is_postgres:
            return await self._claim_in_one_statement(limit, now)
        query_limit = 4 * limit
        async with claims.sqlite_writer(self.db) as driver:
            targets_needed: dict[str, int] = {}
            # Endpoints above their refill mark need nothing yet and are left out of the
            # query itself. The query takes the oldest due deliveries of all endpoints, and
            # a slow endpoint's are the oldest: included while it had room for only a few,
            # its backlog filled the candidates and crowded a fast endpoint out of every
            # claim (measured: the fast one at 6-15 % of its rate alone, in 2 of 9 runs).
            busy = [ep for ep, n in self._held.items() if n > self._targets.refill_at(ep)]
            candidates = await claims.due_candidates(driver, now=now, limit=query_limit, busy=busy)
            if not candidates:
                return 0, False
            # Read on a connection of its own; the writer stays in this transaction.
            targets = await self._targets_of({c[1] for c in candidates}, now)
            ordered = {ep for _, ep, is_ordered in candidates if is_ordered}
            heads = await claims.queue_heads(driver, list(ordered)) if ordered else {}
            picked: list[int] = []
            for delivery_id, endpoint_id, is_ordered in candidates:
                target = targets.get(endpoint_id)
                if target is None:  # deleted meanwhile
                    continue
                depth = self._targets.depth(endpoint_id)
                used = self._held.get(endpoint_id, 0) + targets_needed.get(endpoint_id, 0)
                if used >= depth or (is_ordered and heads.get(endpoint_id) != delivery_id):
                    continue
                targets_needed[endpoint_id] = targets_needed.get(endpoint_id, 0) + 1
                picked.append(delivery_id)
                if len(picked) >= limit:
                    break
            claimed = await claims.lease_sqlite(
                driver, picked, now=now, lease_for=self.options.lease
            )
            if not claimed:
                return 0, False
        self._start(claimed, targets)
        # Claim again at once if the batch was full, or if the query returned all the rows
        # it could: due deliveries of other endpoints may lie behind them, and the next
        # query leaves out the endpoints this one topped up. Otherwise the next claim
        # waits for lanes to run low or the poll.
        return len(claimed), len(candidates) >= query_limit or len(picked) >= limit

    async def _claim_in_one_statement(self, limit: int, now: datetime) -> tuple[int, bool]:
        # The statement gives each endpoint ``max_concurrency - n`` rows: n is what it holds
        # less what it may claim ahead (negative for an idle endpoint that may).
        ahead = {t.id: self._held.get(t.id, 0) - (t.depth - t.cap) for t in self._targets.all()}
        async with claims.postgres_autocommit(self.db) as driver:
            claimed = await claims.claim_due_postgresql(
                driver,
                now=now,
                limit=limit,
                in_flight=ahead,
                lease_for=self.options.lease,
            )
        if not claimed:
            return 0, False
        targets = await self._targets_of({c.endpoint_id for c, _ in claimed}, now)
        self._start(claimed, targets)
        # A full batch may have left due deliveries behind, but claiming again is only worth
        # it if some endpoint may still take more.
        room_left = any(self._held[ep] < self._targets.depth(ep) for ep in self._held)
        return len(claimed), len(claimed) >= limit and room_left

    async def _targets_of(self, endpoints: set[str], now: datetime) -> dict[str, Target]:
        """The endpoints' targets: from the cache, or read on a reader when stale."""
        targets = self._targets.cached(endpoints, now)
        if targets is None:
            async with self.db.reader() as session:
                targets = await self._targets.fresh(session, endpoints, now)
        return targets

    def _start(
        self, claimed: Sequence[tuple[Claimed, EventRecord]], targets: dict[str, Target]
    ) -> None:
        touched: set[str] = set()
        for delivery, event in claimed:
            endpoint_id = delivery.endpoint_id
            if endpoint_id not in targets:  # deleted meanwhile, its deliveries with it
                continue
            self._lanes[endpoint_id].append((delivery, event))
            self._held[endpoint_id] += 1
            self._total_held += 1
            touched.add(endpoint_id)
        for endpoint_id in touched:
            self._spawn_senders(endpoint_id)

    def _spawn_senders(self, endpoint_id: str) -> None:
        """Start senders for an endpoint's lane, up to its concurrency and the process's
        ``max_in_flight``. A sender works through the lane and ends when it is empty."""
        lane = self._lanes.get(endpoint_id)
        if not lane or self._stopping:
            return
        running = self._senders[endpoint_id]
        wanted = min(self._targets.cap(endpoint_id) - running, len(lane))
        room = self.options.max_in_flight - self._running
        if wanted > room:
            self._starved.add(endpoint_id)
        for _ in range(min(wanted, room)):
            self._senders[endpoint_id] += 1
            self._running += 1
            task = asyncio.create_task(self._drain(endpoint_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _drain(self, endpoint_id: str) -> None:
        lane = self._lanes[endpoint_id]
        try:
            while lane and not self._stopping:
                delivery, event = lane.popleft()
                target = self._targets.get(endpoint_id)
                try:
                    if target is not None:
                        await self._send(delivery, target, event)
                finally:
                    left = self._held[endpoint_id] = self._held[endpoint_id] - 1
                    self._total_held -= 1
                    # Time to top the lane up (Target.refill_at).
                    if left <= self._targets.refill_at(endpoint_id):
                        self._wakeup.set()
        finally:
            self._senders[endpoint_id] -= 1
            self._running -= 1
            # The room this sender leaves may let a lane start that ``max_in_flight`` held
            # back.
            while self._starved and self._running < self.options.max_in_flight:
                self._spawn_senders(self._starved.pop())

    # ---- sending --------------------------------------------------------------------------

    async def _send(self, delivery: Claimed, target: Target, event: EventRecord) -> None:
        try:
            if target.limiter is not None:
                await target.limiter.acquire()
            result, body, error, duration = await self._post(target, event)
            self._finish(delivery, target, result, body, error, duration)
        except Exception:  # pragma: no cover - a bug; the lease will bring it back
            log.exception("delivery %s: unexpected error", delivery.id)

    async def _post(
        self, target: Target, event: EventRecord
    ) -> tuple[AttemptResult, str | None, str | None, int]:
        assert self._session is not None
        rendered = render_event(event)
        payload = orjson.dumps(rendered)
        msg_id = rendered["event_id"]
        started = time.monotonic()
        if target.signer is None:
            return AttemptResult(None), None, "endpoint has no live signing secret", 0
        headers = target.signer.headers(msg_id, int(time.time()), payload)
        headers["content-type"] = "application/json"
        headers["user-agent"] = USER_AGENT
        try:
            # The session's middleware runs check_url on this URL (and on any redirect).
            async with self._session.post(
                target.url, data=payload, headers=headers, allow_redirects=False
            ) as response:
                body = await _read_up_to(response.content, self.options.response_limit)
                retry_after = parse_retry_after(
                    response.headers.get("retry-after"), self.clock.now()
                )
                result = AttemptResult(response.status, retry_after=retry_after)
                return result, _as_text(body), None, _ms(started)
        except TimeoutError:
            return AttemptResult(None, timed_out=True), None, "timed out", _ms(started)
        except (aiohttp.ClientError, OSError) as error:
            unsafe = find_unsafe_target(error)
            message = str(unsafe) if unsafe else f"{type(error).__name__}: {error}"
            return AttemptResult(None), None, message[:1000], _ms(started)

    def _finish(
        self,
        delivery: Claimed,
        target: Target,
        result: AttemptResult,
        body: str | None,
        error: str | None,
        duration: int,
    ) -> None:
        now = self.clock.now()
        attempt = delivery.attempts + 1
        succeeded = result.outcome is AttemptOutcome.SUCCEEDED
        next_at = None if succeeded else self.options.retry.next_attempt(attempt, result, now)
        if error is None and not succeeded:
            error = f"HTTP {result.status_code}"
        self._writer.add(
            Finished(delivery, now, duration, result.status_code, body, error, next_at, succeeded)
        )

    # ---- writing results ------------------------------------------------------------------

    async def flush(self) -> None:
        await self._writer.flush()


async def _read_up_to(stream: aiohttp.StreamReader, limit: int) -> bytes:
    """The first ``limit`` bytes of the body, or all of it if shorter. One ``read(n)`` is
    not enough: it returns whatever has arrived so far, which may be a first piece only."""
    body = bytearray()
    while len(body) < limit:
        piece = await stream.read(limit - len(body))
        if not piece:
            break
        body += piece
    return bytes(body)


def _as_text(body: bytes) -> str | None:
    # Stored in a text column: PostgreSQL refuses NUL in text, and a failed write would
    # lose the whole batch of results, so NUL becomes U+FFFD like any undecodable byte.
    if not body:
        return None
    return body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
