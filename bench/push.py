"""The push scenario: READY orders pushed into a real Vendure by the worker (plug & play's
job machinery and the Vendure connector), beside the same GraphQL calls made directly.

- **Vendure**: 3.7.3 on sql.js, from ``tests/support/vendure.py`` (installed with ``npm ci``
  into ``~/.cache/orderbridge/vendure`` on first use, seeded, on a free loopback port), one
  per backend, in memory (no file rewrite after every change).
- **The orders**: ``--push-orders`` checkout orders (``bench.payloads`` buyers: French
  addresses, one to three items of the demo catalog, which the seeded Vendure sells)
  submitted through the API in-process and processed to READY with the store still
  unconnected; then the store gets its Vendure connection (shipping method option set) and
  every order a push run (``PushService.retry``, the merchant's "retry push", in one
  transaction): ``order.push`` jobs, due now.
- **The worker**: one ``python -m bench.worker --no-dispatcher`` process (what
  ``orderbridge worker`` runs, default ``worker_concurrency`` 8) claims the jobs, pushes
  (the connector pool, the SSRF-guarded transport, the connector), accepts with Vendure's
  id and code, then finalises: READY → ACCEPTED → COMPLETED. The rate is the orders over
  the time from the first push attempt's start to the last order's COMPLETED, both stored
  by the worker. Every order must end COMPLETED after one attempt, or it counts as an error.
- **Direct**: the same documents with the same variables (``vendure_graphql``), through
  the same client (``connectors.http.build_client`` over ``GuardedTransport``), at the
  worker's concurrency, on this process's loop, no database: log in, look the SKUs and the
  shipping method up once, then three requests per order (the connector's steady state).
  Run before and after the worker on as many orders; their mean is the baseline, so drift
  of Vendure as it fills up hits both sides.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import Engine, create_engine, func, select
from tests.support import vendure as harness

from bench import servers
from bench.payloads import buyer_body, buyer_templates
from bench.scenarios import Context
from bench.webhooks import start_worker
from orderbridge.api.app import create_app
from orderbridge.bootstrap import build
from orderbridge.connectors import http
from orderbridge.connectors import vendure_graphql as gql
from orderbridge.connectors.mapping import CurrencyMode, push_order
from orderbridge.connectors.port import ConnectionSettings, PushOrder
from orderbridge.connectors.schemas import ConnectionIn
from orderbridge.connectors.transport import GuardedTransport
from orderbridge.db.models import Order, PushAttempt
from orderbridge.ids import order_public_id
from orderbridge.outbound.guard import OutboundPolicy
from orderbridge.settings import Settings, WorkerMode
from orderbridge.stores import service as stores

MIN_RATIO = 0.80  # of the direct calls' rate
STORE_CURRENCY = "EUR"
POLL = 0.1
WARMUP_ORDERS = 40  # Vendure's first orders are slow (JIT, caches): not measured
ROUNDS = 3  # direct and worker alternate, so that drift of the machine hits both
WORKER_CONCURRENCY = Settings.model_fields["worker_concurrency"].default


@dataclass
class Prepared:
    store_id: str
    order_ids: list[int]
    pushes: list[PushOrder]  # the orders as the connector gets them, for the direct calls


def _settings(ctx: Context) -> Settings:
    return Settings(
        database_url=ctx.database.url,
        data_dir=ctx.work_dir,  # the worker's too: the same data_dir/secret.key
        worker_mode=WorkerMode.OFF,
        outbound_allow_private=True,  # Vendure is on loopback
    )


# ---- preparation --------------------------------------------------------------------------


async def _prepare(ctx: Context, server: harness.VendureServer, count: int) -> Prepared:
    container = build(_settings(ctx))
    try:
        now = container.clock.now()
        async with container.db.transaction() as session:
            store = await stores.create_store(
                session, name="Bench push", currency=STORE_CURRENCY, country="DE", now=now
            )
            checkout = await stores.issue_key(
                session, store_id=store.id, kind=stores.KeyKind.CHECKOUT, now=now, label="bench"
            )
        templates = buyer_templates(ctx.options.seed, 64)
        app = create_app(container, manage_container=False)
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://bench"
            ) as client,
        ):
            for sequence in range(count):
                answer = await client.post(
                    f"/v2/checkout/{store.id}/orders",
                    content=buyer_body(templates, sequence),
                    headers={
                        "Authorization": f"Bearer {checkout.secret}",
                        "Content-Type": "application/json",
                        "Idempotency-Key": f"push-{sequence}",
                    },
                )
                if answer.status_code != 201:
                    raise RuntimeError(f"intake answered {answer.status_code}: {answer.text}")
        await container.worker().run_until_idle()
        async with container.db.transaction() as session:
            await container.connections.put(
                session,
                store.id,
                ConnectionIn(
                    platform="vendure",
                    base_url=server.admin_url,
                    credentials={"username": server.username, "password": server.password},
                    options={"shipping_method": harness.SHIPPING_CODE},
                    timeout=30,
                ),
            )
            orders = list(
                await session.scalars(
                    select(Order).where(Order.store_id == store.id).order_by(Order.id)
                )
            )
            not_ready = [o.status for o in orders if o.status != "READY"]
            if not_ready:
                raise RuntimeError(f"{len(not_ready)} orders did not get READY: {not_ready[:5]}")
            pushes = [
                push_order(o, base_currency=STORE_CURRENCY, mode=CurrencyMode.BASE) for o in orders
            ]
    finally:
        await container.close()
    return Prepared(store.id, [o.id for o in orders], pushes)


async def _start_pushes(ctx: Context, store_id: str, order_ids: list[int]) -> None:
    """A push run for each order (the merchant's "retry push"), in one transaction."""
    container = build(_settings(ctx))
    try:
        async with container.db.transaction() as session:
            for order_id in order_ids:
                await container.pushes.retry(session, store_id, order_public_id(store_id, order_id))
    finally:
        await container.close()


# ---- the direct calls ---------------------------------------------------------------------


class _Direct:
    """The connector's requests without the connector: same documents, variables, client."""

    def __init__(self, server: harness.VendureServer) -> None:
        settings = ConnectionSettings(
            platform="vendure",
            base_url=server.admin_url,
            credentials={"username": server.username, "password": server.password},
            timeout=30.0,
        )
        self.server = server
        self.client = http.build_client(
            settings,
            base_url=server.admin_url,
            headers={"Content-Type": "application/json"},
            transport=GuardedTransport(OutboundPolicy(allow_private=True)),
        )

    async def post(
        self, document: str, variables: dict[str, Any], currency: str | None = None
    ) -> dict[str, Any]:
        answer = await self.client.post(
            "",
            params={"currencyCode": currency} if currency else None,
            json={"query": document, "variables": variables},
        )
        body: dict[str, Any] = answer.json()
        if answer.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"Vendure: {answer.status_code} {body.get('errors')}")
        data: dict[str, Any] = body["data"]
        return data

    async def run(self, pushes: list[PushOrder], concurrency: int) -> dict[str, Any]:
        started = time.perf_counter()
        login = await self.client.post(
            "",
            json={
                "query": gql.LOGIN,
                "variables": {"username": self.server.username, "password": self.server.password},
            },
        )
        self.client.headers["Authorization"] = f"Bearer {login.headers['vendure-auth-token']}"
        skus = sorted({line.sku for push in pushes for line in push.lines})
        found = await self.post(gql.VARIANTS_BY_SKU, {"skus": skus, "take": len(skus)})
        variants = {v["sku"]: v["id"] for v in found["productVariants"]["items"]}
        methods = await self.post(gql.SHIPPING_METHODS, {"code": harness.SHIPPING_CODE})
        method_id = methods["shippingMethods"]["items"][0]["id"]
        queue: asyncio.Queue[PushOrder] = asyncio.Queue()
        for push in pushes:
            queue.put_nowait(push)
        errors: list[str] = []

        async def one(push: PushOrder) -> None:
            draft = await self.post(gql.CREATE_DRAFT, {}, push.currency)
            draft_id = draft["createDraftOrder"]["id"]
            await self.post(
                gql.build_draft_document(len(push.lines), with_shipping_method=True),
                gql.draft_variables(push, draft_id, variants, method_id),
                push.currency,
            )
            settled = await self.post(
                gql.build_settle_document(with_shipping_method=False),
                gql.settle_variables(push, draft_id, "orderbridge", None),
                push.currency,
            )
            if settled[gql.PAYMENT].get("state") != "PaymentSettled":
                raise RuntimeError(f"not settled: {settled}")

        async def lane() -> None:
            while not queue.empty():
                push = queue.get_nowait()
                try:
                    await one(push)
                except Exception as error:
                    errors.append(f"{type(error).__name__}: {error}"[:300])

        await asyncio.gather(*(lane() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        return {
            "orders": len(pushes),
            "errors": len(errors),
            "first_errors": errors[:3],
            "seconds": seconds,
            "rate": len(pushes) / seconds,
        }

    async def aclose(self) -> None:
        await self.client.aclose()


async def _direct(
    server: harness.VendureServer, pushes: list[PushOrder], phase: str, concurrency: int
) -> dict[str, Any]:
    # Our order ids are unique in Vendure (externalId), so the direct orders get their own;
    # and their own buyers, since a buyer's first order also creates a Vendure customer:
    # every phase, the worker's included, pays for one customer per order.
    own = [
        dataclasses.replace(p, order_id=f"direct-{phase}-{p.order_id}", email=f"{phase}.{p.email}")
        for p in pushes
    ]
    direct = _Direct(server)
    cpu_before = servers.cpu_seconds(server)  # type: ignore[arg-type]  # any .process will do
    client_before = time.process_time()
    try:
        result = await direct.run(own, concurrency)
    finally:
        await direct.aclose()
    result["client_cpu_seconds"] = time.process_time() - client_before
    cpu_after = servers.cpu_seconds(server)  # type: ignore[arg-type]
    if cpu_before is not None and cpu_after is not None:
        result["vendure_cpu_seconds"] = cpu_after - cpu_before
    return result


# ---- the worker ---------------------------------------------------------------------------


def _statuses(engine: Engine, order_ids: list[int]) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Order.status, func.count()).where(Order.id.in_(order_ids))
            .group_by(Order.status)
        ).all()  # fmt: skip
    return {row[0]: int(row[1]) for row in rows}


def _worker_round(
    ctx: Context,
    engine: Engine,
    worker: servers.Server,
    vendure: harness.VendureServer,
    store_id: str,
    order_ids: list[int],
) -> dict[str, Any]:
    """Push runs for these orders, pushed by the (idle until then) worker process; the
    figures of the round from what the worker stored."""
    cpu_before = servers.cpu_seconds(worker)
    vendure_before = servers.cpu_seconds(vendure)  # type: ignore[arg-type]  # has .process
    asyncio.run(_start_pushes(ctx, store_id, order_ids))
    deadline = time.monotonic() + 120 + len(order_ids)  # bounded: 1 order/s at the very least
    while True:
        statuses = _statuses(engine, order_ids)
        if not statuses.get("READY") and not statuses.get("ACCEPTED"):
            break
        if worker.process.poll() is not None:
            raise RuntimeError(f"the push worker exited:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"orders not pushed in time: {statuses}")
        time.sleep(POLL)
    cpu_after = servers.cpu_seconds(worker)
    vendure_after = servers.cpu_seconds(vendure)  # type: ignore[arg-type]
    attempts = PushAttempt.order_id.in_(order_ids)
    with engine.connect() as connection:
        first = connection.scalar(select(func.min(PushAttempt.started_at)).where(attempts))
        last = connection.scalar(select(func.max(Order.updated_at)).where(Order.id.in_(order_ids)))
        outcomes = dict(
            connection.execute(
                select(PushAttempt.outcome, func.count())
                .where(attempts)
                .group_by(PushAttempt.outcome)
            ).all()
        )
        push_ms = connection.scalar(select(func.avg(PushAttempt.duration_ms)).where(attempts))
    assert first is not None and last is not None
    count = len(order_ids)
    completed = statuses.get("COMPLETED", 0)
    return {
        "orders": count,
        "completed": completed,
        "errors": count - completed + sum(n for o, n in outcomes.items() if o != "pushed"),
        "attempts": {str(k): int(v) for k, v in outcomes.items()},
        "seconds": (last - first).total_seconds(),
        "mean_attempt_ms": float(push_ms or 0.0),
        "cpu_seconds": None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
        "vendure_cpu_seconds": (
            None
            if vendure_before is None or vendure_after is None
            else vendure_after - vendure_before
        ),
    }


def _totals(runs: list[dict[str, Any]], cpu_key: str) -> dict[str, Any]:
    """Orders over the summed time of the rounds; CPU per order over all of them."""
    orders = sum(r["orders"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    done = sum(r.get("completed", r["orders"] - r["errors"]) for r in runs)
    total: dict[str, Any] = {
        "orders": orders,
        "completed": done,
        "errors": sum(r["errors"] for r in runs),
        "seconds": seconds,
        "rate": done / seconds if seconds > 0 else 0.0,
        "rates": [r["orders"] / r["seconds"] if r["seconds"] > 0 else 0.0 for r in runs],
        "runs": runs,
    }
    for key, name in (
        (cpu_key, "cpu_ms_per_order"),
        ("vendure_cpu_seconds", "vendure_cpu_ms_per_order"),
    ):
        figures = [r[key] for r in runs if r.get(key) is not None]
        total[name] = sum(figures) * 1000 / orders if len(figures) == len(runs) else None
    return total


def run(ctx: Context) -> None:
    count = ctx.options.push_orders
    rounds = max(1, min(ROUNDS, count // 20))
    concurrency = WORKER_CONCURRENCY
    try:
        server = harness.start(log=lambda line: ctx.log(f"  push: {line}"))
    except harness.VendureUnavailable as missing:
        ctx.log(f"  push: skipped, Vendure unavailable ({missing})")
        ctx.results["push"] = {"skipped": str(missing)}
        return
    engine = create_engine(ctx.database.sync_url)
    direct: list[dict[str, Any]] = []
    pushed: list[dict[str, Any]] = []
    try:
        ctx.log(f"  push: {count:,} orders to READY, then the store connects to Vendure")
        prepared = asyncio.run(_prepare(ctx, server, count))
        warmup = prepared.pushes[: min(WARMUP_ORDERS, count)]
        ctx.log(f"  push: warm-up, {len(warmup)} direct orders (not counted)")
        asyncio.run(_direct(server, warmup, "warmup", concurrency))
        worker = start_worker(ctx, f"{ctx.database.backend}-push-worker", dispatcher=False)
        try:
            size = -(-count // rounds)
            for number in range(rounds):
                batch = slice(number * size, (number + 1) * size)
                ids, pushes = prepared.order_ids[batch], prepared.pushes[batch]
                ctx.log(
                    f"  push: round {number + 1}/{rounds}: {len(ids)} direct, c={concurrency},"
                    " then as many through the worker"
                )
                direct.append(asyncio.run(_direct(server, pushes, f"r{number}", concurrency)))
                pushed.append(_worker_round(ctx, engine, worker, server, prepared.store_id, ids))
            ctx.log("  push: direct calls once more")
            direct.append(asyncio.run(_direct(server, pushes, "last", concurrency)))
        finally:
            servers.stop(worker)
    finally:
        engine.dispose()
        server.stop()
    ctx.results["push"] = {
        "orders": count,
        "rounds": rounds,
        "concurrency": concurrency,
        "worker": _totals(pushed, "cpu_seconds"),
        "direct": _totals(direct, "client_cpu_seconds"),
    }


# ---- report -------------------------------------------------------------------------------


def check_target(result: dict[str, Any]) -> dict[str, Any] | None:
    push = result.get("push")
    if not push or "skipped" in push:
        return None
    worker, direct = push["worker"], push["direct"]
    ratio = worker["rate"] / direct["rate"] if direct["rate"] else 0.0
    return {
        "value": ratio,
        "target": f">= {MIN_RATIO:.0%}",
        "met": worker["errors"] == 0 and direct["errors"] == 0 and ratio >= MIN_RATIO,
    }


def format_lines(push: dict[str, Any], target: dict[str, Any] | None) -> list[str]:
    if "skipped" in push:
        return [f"  push to Vendure: skipped ({push['skipped']})"]
    worker, direct, c = push["worker"], push["direct"], push["concurrency"]
    attempt = sum(r["mean_attempt_ms"] for r in worker["runs"]) / len(worker["runs"])
    lines = [
        f"  {'push to Vendure, worker + connector':<38}{worker['rate']:>9,.1f} orders/s     "
        f"{worker['completed']:,}/{worker['orders']:,} COMPLETED, {worker['errors']} errors, "
        f"attempt {attempt:.0f} ms" + _cpu("worker", worker),
        f"  {f'         direct GraphQL calls  c={c}':<38}{direct['rate']:>9,.1f} orders/s     "
        f"{direct['errors']} errors" + _cpu("client", direct),
        f"  {'         per round':<38}worker {_rates(worker)}; direct {_rates(direct)}",
    ]
    if target is not None:
        state = "met" if target["met"] else "MISSED"
        lines.append(
            f"  {'         worker / direct':<38}{target['value']:>12.1%}   "
            f"target {target['target']:<20}{state}"
        )
    return lines


def _rates(total: dict[str, Any]) -> str:
    return ", ".join(f"{rate:.1f}" for rate in total["rates"])


def _cpu(label: str, total: dict[str, Any]) -> str:
    mine, vendure = total["cpu_ms_per_order"], total["vendure_cpu_ms_per_order"]
    text = "" if mine is None else f", {label} {mine:.1f} ms cpu each"
    return text + ("" if vendure is None else f", Vendure {vendure:.0f} ms cpu each")
