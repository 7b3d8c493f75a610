"""The webhook scenario: deliveries/s from one worker process to a local receiver, beside a
bare sender loop with the same HTTP client measured in the same run.

Order of work:

1. A receiver process (bench.receiver) and a store with one endpoint on it (``/hook``,
   ``max_concurrency`` = the scenario's concurrency, at most 100 as the API allows), made
   through the service layer (``WebhookService.create_endpoint``: a real signing secret).
2. N orders bulk-inserted, then one ``order.ready`` event per order recorded through the
   real ``EventRecorder`` (500 per transaction): its listener ``create_deliveries`` makes
   the deliveries, exactly as for a live event. Nothing is sent yet: no dispatcher runs.
3. The bare loop (bench.sender) sends N signed POSTs of the same bodies to the same
   receiver at the same concurrency; then the dispatcher phase; then the bare loop again.
4. Dispatcher phase: one ``python -m bench.worker`` process (what ``orderbridge worker``
   runs: the job worker, idle here, and the dispatcher) drains the deliveries. The rate is
   N over the time from its first attempt to the last delivery's ``completed_at`` (both
   from the dispatcher's clock, stored in the rows), so process start-up is not counted and
   polling does not blur it. Every delivery must be ``succeeded`` with one 200 attempt.
5. Fairness: a second store with the fast endpoint and a slow one (``/slow`` answers after
   100 ms, ``max_concurrency`` 10), N/2 events, a new dispatcher process; the fast
   endpoint's rate is compared with step 4's. The slow backlog is left undelivered.

Both endpoints are disabled at the end, so that a later scenario's dispatcher leaves them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, func, insert, select, update

from bench import servers
from bench.databases import BenchDatabase
from bench.scenarios import Context
from bench.seed import order_rows
from bench.sender import SenderSpec
from orderbridge.bootstrap import Container, build
from orderbridge.db.models import Event, Order, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orderbridge.events.recorder import NewEvent
from orderbridge.events.render import render_event
from orderbridge.ids import FeedPosition
from orderbridge.orders.lifecycle import Actor
from orderbridge.settings import Settings, WorkerMode
from orderbridge.stores import service as stores
from orderbridge.webhooks.schemas import EndpointCreate

EVENTS_PER_TRANSACTION = 500
SLOW_CONCURRENCY = 10
SENDER_MESSAGES = 2_000  # distinct bodies the bare loop cycles through
READY_TIMEOUT = 60.0
POLL = 0.1


@dataclass(frozen=True)
class Endpoint:
    id: str
    secret: str


@dataclass(frozen=True)
class WebhookStore:
    store_id: str
    endpoints: list[Endpoint]


def bench_settings(database: BenchDatabase, work_dir: Path, **overrides: Any) -> Settings:
    """The settings every bench process shares (the same data_dir: the same secret key)."""
    return Settings(
        database_url=database.url,
        data_dir=work_dir,
        worker_mode=WorkerMode.OFF,
        outbound_allow_private=True,
        **overrides,
    )


# ---- data ---------------------------------------------------------------------------------


async def _create_store(
    container: Container, name: str, endpoints: list[tuple[str, int]]
) -> WebhookStore:
    now = container.clock.now()
    made = []
    async with container.db.transaction() as session:
        store = await stores.create_store(session, name=name, currency="EUR", country="FR", now=now)
        for url, concurrency in endpoints:
            spec = EndpointCreate(url=url, max_concurrency=concurrency)
            endpoint, secret = await container.webhooks.create_endpoint(session, store.id, spec)
            made.append(Endpoint(endpoint.id, secret))
    return WebhookStore(store.id, made)


async def _record_events(container: Container, store_id: str, count: int) -> None:
    """``count`` orders in bulk, then one ``order.ready`` event each through the recorder,
    whose listener creates the deliveries in the event's transaction."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    async with container.db.transaction() as session:
        await session.execute(insert(Order), order_rows(store_id, count, start))
    async with container.db.reader() as session:
        order_ids = list(
            await session.scalars(
                select(Order.id).where(Order.store_id == store_id).order_by(Order.id)
            )
        )
    actor = Actor.system("processing")
    for first in range(0, len(order_ids), EVENTS_PER_TRANSACTION):
        async with container.db.transaction() as session:
            for order_id in order_ids[first : first + EVENTS_PER_TRANSACTION]:
                event = NewEvent(
                    store_id=store_id,
                    name="order.ready",
                    at=container.clock.now(),
                    actor=actor,
                    order_id=order_id,
                    from_status="RECEIVED",
                    to_status="READY",
                )
                await container.recorder.record(session, event)


async def _prepare(
    ctx: Context, name: str, endpoints: list[tuple[str, int]], events: int
) -> tuple[WebhookStore, list[tuple[str, str]]]:
    """The store, its deliveries, and the bodies the dispatcher will send (for the bare
    loop: rendered from the stored events exactly as the dispatcher renders them)."""
    container = build(bench_settings(ctx.database, ctx.work_dir, db_pool_size=2))
    try:
        store = await _create_store(container, name, endpoints)
        await _record_events(container, store.store_id, events)
        async with container.db.reader() as session:
            rows = await session.scalars(
                select(Event)
                .where(Event.store_id == store.store_id)
                .order_by(Event.id)
                .limit(SENDER_MESSAGES)
            )
            messages = [
                (FeedPosition(e.txid, e.pos).event_id(), orjson.dumps(render_event(e)).decode())
                for e in rows.all()
            ]
    finally:
        await container.close()
    return store, messages


def _disable(engine: Engine, store_ids: list[str]) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.store_id.in_(store_ids))
            .values(enabled=False, disabled_reason="manual")
        )


# ---- the bare loop ------------------------------------------------------------------------


def _bare(ctx: Context, spec: SenderSpec) -> dict[str, Any]:
    spec_file = ctx.work_dir / f"sender-{uuid.uuid4().hex[:8]}.json"
    spec_file.write_text(json.dumps(asdict(spec)))
    completed = subprocess.run(
        [sys.executable, "-m", "bench.sender", str(spec_file)],
        cwd=servers.REPO,
        capture_output=True,
        timeout=120 + spec.count / 100,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bare sender failed:\n{completed.stderr.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


# ---- the dispatcher -----------------------------------------------------------------------


def start_worker(
    ctx: Context, name: str, *, dispatcher: bool = True, profile: str | None = None
) -> servers.Server:
    """A ``python -m bench.worker`` process, once it has built its container."""
    ready = ctx.work_dir / f"{name}.ready"
    ready.unlink(missing_ok=True)
    arguments = [
        "--database-url", ctx.database.url,
        "--data-dir", str(ctx.work_dir),
        "--pool-size", str(ctx.options.pool_size),
        "--ready-file", str(ready),
        "--loop", ctx.options.worker_loop,
    ]  # fmt: skip
    if not dispatcher:
        arguments.append("--no-dispatcher")
    for experiment in ctx.options.experiments:
        arguments += ["--experiment", experiment]
    if profile:
        arguments += ["--profile-out", profile]
    worker = servers.spawn(name, "bench.worker", arguments, ctx.work_dir)
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready.exists():
        if worker.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not start:\n{worker.log_tail()}")
        time.sleep(0.05)
    return worker


def _statuses(engine: Engine, endpoint_id: str) -> dict[str, int]:
    d = WebhookDelivery
    with engine.connect() as connection:
        rows = connection.execute(
            select(d.status, func.count()).where(d.endpoint_id == endpoint_id).group_by(d.status)
        ).all()
    return {row[0]: int(row[1]) for row in rows}


def _wait_delivered(
    engine: Engine,
    worker: servers.Server,
    endpoint_id: str,
    count: int,
    receiver: servers.Server,
    received_before: int,
) -> None:
    """Until the endpoint's ``count`` deliveries are written as succeeded. The receiver's
    count is watched first: asking the database ten times a second for the endpoint's
    statuses took CPU from the database the dispatcher was using (a scan of the endpoint's
    deliveries each time), and the rate comes from the rows' times anyway."""
    deadline = time.monotonic() + 120 + count / 50  # bounded: 50/s at the very least
    while _received(receiver).get("hook", 0) - received_before < count:
        if worker.process.poll() is not None:
            raise RuntimeError(f"{worker.name} exited:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            break  # the database says what is missing
        time.sleep(POLL)
    while _statuses(engine, endpoint_id).get("succeeded", 0) < count:
        if worker.process.poll() is not None:
            raise RuntimeError(f"{worker.name} exited:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"deliveries not done in time: {_statuses(engine, endpoint_id)}")
        time.sleep(POLL)


def _delivered(engine: Engine, endpoint_id: str, count: int) -> dict[str, Any]:
    """The rate from the rows: first attempt to last completion, on the dispatcher's clock."""
    a, d = WebhookAttempt, WebhookDelivery
    with engine.connect() as connection:
        first = connection.scalar(
            select(a.attempted_at).where(a.endpoint_id == endpoint_id).order_by(a.attempted_at)
        )
        last = connection.scalar(
            select(d.completed_at)
            .where(d.endpoint_id == endpoint_id)
            .order_by(d.completed_at.desc())
            .limit(1)
        )
        attempts = connection.execute(
            select(a.status_code, func.count()).where(a.endpoint_id == endpoint_id)
            .group_by(a.status_code)
        ).all()  # fmt: skip
    assert first is not None and last is not None
    seconds = (last - first).total_seconds()
    by_status = {str(row[0]): int(row[1]) for row in attempts}
    return {
        "deliveries": count,
        "seconds": seconds,
        "rate": count / seconds if seconds > 0 else 0.0,
        "attempts": by_status,
        "errors": sum(n for status, n in by_status.items() if status != "200"),
    }


def _dispatch(
    ctx: Context,
    engine: Engine,
    name: str,
    endpoint_id: str,
    count: int,
    receiver: servers.Server,
    profile: str | None = None,
) -> dict[str, Any]:
    """``count`` deliveries to the receiver's ``/hook``, by one worker process."""
    received_before = _received(receiver).get("hook", 0)
    worker = start_worker(ctx, name, profile=profile)
    cpu_before = servers.cpu_seconds(worker)
    try:
        _wait_delivered(engine, worker, endpoint_id, count, receiver, received_before)
        cpu_after = servers.cpu_seconds(worker)
    finally:
        servers.stop(worker)
    result = _delivered(engine, endpoint_id, count)
    if cpu_before is not None and cpu_after is not None:
        result["worker_cpu_ms_per_delivery"] = (cpu_after - cpu_before) * 1000 / count
    return result


# ---- the scenario -------------------------------------------------------------------------


def _received(receiver: servers.Server) -> dict[str, int]:
    with urllib.request.urlopen(receiver.base_url + "/stats", timeout=10) as answer:
        return dict(json.loads(answer.read()))


def run(ctx: Context) -> None:
    options = ctx.options
    count, concurrency = options.webhook_deliveries, options.webhook_concurrency
    backend = ctx.database.backend
    receiver = servers.start(f"{backend}-receiver", [], ctx.work_dir, module="bench.receiver")
    engine = create_engine(ctx.database.sync_url)
    store_ids: list[str] = []
    try:
        ctx.log(f"  webhooks: {count:,} deliveries through the recorder")
        started = time.monotonic()
        hook = receiver.base_url + "/hook"
        store, messages = asyncio.run(_prepare(ctx, "Bench webhooks", [(hook, concurrency)], count))
        store_ids.append(store.store_id)
        seed_seconds = round(time.monotonic() - started, 2)
        fast = store.endpoints[0]
        spec = SenderSpec(
            url=hook, secret=fast.secret, messages=messages, count=count,
            concurrency=concurrency, loop=options.worker_loop,
        )  # fmt: skip
        ctx.log(f"  webhooks: bare sender loop, c={concurrency}")
        bare_runs = [_bare(ctx, spec)]
        ctx.log(f"  webhooks: dispatcher (one worker process), c={concurrency}")
        profile = None
        if options.profile_workers:
            profile = str(options.results_dir.resolve() / f"profile-dispatcher-{backend}.prof")
            ctx.results["webhooks_profile"] = profile
        dispatcher = _dispatch(
            ctx, engine, f"{backend}-dispatcher", fast.id, count, receiver, profile
        )
        ctx.log("  webhooks: bare sender loop again")
        bare_runs.append(_bare(ctx, spec))
        fairness = None
        if options.webhook_fairness:
            ctx.log("  webhooks: fairness, the fast endpoint beside a slow one")
            slow = receiver.base_url + "/slow"
            pair, _ = asyncio.run(
                _prepare(
                    ctx,
                    "Bench webhooks fairness",
                    [(hook, concurrency), (slow, SLOW_CONCURRENCY)],
                    count // 2,
                )
            )
            store_ids.append(pair.store_id)
            fast_id, slow_id = pair.endpoints[0].id, pair.endpoints[1].id
            fairness = _dispatch(
                ctx, engine, f"{backend}-dispatcher-fair", fast_id, count // 2, receiver
            )
            fairness["slow_endpoint"] = _statuses(engine, slow_id)
        rates = sorted(r["rps"] for r in bare_runs)
        ctx.results["webhooks"] = {
            "deliveries": count,
            "concurrency": concurrency,
            "body_bytes": round(sum(len(m[1]) for m in messages) / len(messages)),
            "seed_seconds": seed_seconds,
            "dispatcher": dispatcher,
            "bare": {"rps": sum(rates) / len(rates), "runs": bare_runs},
            "fairness": fairness,
            "received": _received(receiver),
        }
    finally:
        _disable(engine, store_ids)
        engine.dispose()
        servers.stop(receiver)
