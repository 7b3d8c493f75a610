"""The Merchant Account's order list at 100,000 orders: server time of the list page with
each filter and each kind of search, on a fresh database of each backend.

``python -m bench.ui_list`` (or ``python -m bench --scenario ui-list``). One store holds all
the orders (the worst case for a store-scoped list), spread over 120 days, with realistic
statuses, destinations, flags and checkout documents; they are bulk-inserted through Core
(the columns ``OrderService.receive`` writes), outside the timed part. A signed-in owner then
asks for each page ``--requests`` times through the ASGI app in this process, so what is
timed is the server's whole handling of the request (session, membership, query, template),
without a network. Targets: p50 under 150 ms for every case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, insert, select

from bench.databases import DEFAULT_POSTGRES_URL, BenchDatabase, postgres_database, sqlite_database
from orderbridge.accounts import service as accounts
from orderbridge.api.app import create_app
from orderbridge.bootstrap import build
from orderbridge.db.models import Order
from orderbridge.demo import sample_order
from orderbridge.ids import order_public_id
from orderbridge.orders.document import build_document
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.settings import Settings, WorkerMode
from orderbridge.stores import service as stores

TARGET_P50_MS = 150.0
PASSWORD = "bench password 1"
FIRST = [
    "Anna", "Ben", "Camille", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas",
    "Klara", "Luca", "Marta", "Nils", "Olivia", "Paul", "Rosa", "Sven", "Tara", "Ugo",
]  # fmt: skip
LAST = [
    "Schmidt", "Rossi", "Durand", "Jansen", "Smith", "García", "Novak", "Berg", "Costa",
    "Moreau", "Keller", "Bianchi", "Martin", "Visser", "Brown", "López", "Horvat", "Lind",
    "Silva", "Fischer", "Ricci", "Petit", "Bakker", "Wilson", "Ruiz",
]  # fmt: skip
COUNTRIES = ["DE", "FR", "IT", "NL", "GB", "ES", "AT", "BE", "SE", "PL", "US", "CH"]
STATUSES = [("COMPLETED", 70), ("CANCELLED", 10), ("READY", 10), ("ACCEPTED", 5), ("RECEIVED", 5)]


def _documents(rng: random.Random, count: int = 20) -> list[dict[str, Any]]:
    return [build_document(CheckoutOrder.model_validate(sample_order(rng))) for _ in range(count)]


def _rows(store_id: str, count: int, rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    documents = _documents(rng)
    population = [s for s, weight in STATUSES for _ in range(weight)]
    start = now - timedelta(days=120)
    step = timedelta(days=120) / count
    rows = []
    for n in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        status = rng.choice(population)
        total = Decimal(rng.randint(1_000, 50_000)) / 100
        number = f"#{100000 + n}" if status in ("ACCEPTED", "COMPLETED") else None
        rows.append(
            {
                "store_id": store_id,
                "status": status,
                "idempotency_key": f"bench-{n}",
                "request_hash": "0" * 64,
                "environment": "live",
                "currency": "EUR",
                "total": total,
                "customer_email": f"{first}.{last}.{n}@example.com".lower(),
                "customer_name": f"{first} {last}",
                "shipping_country": rng.choice(COUNTRIES),
                "payment_status": "captured" if status != "RECEIVED" else "pending",
                "authorized": total,
                "captured": total if status != "RECEIVED" else Decimal(0),
                "refunded": Decimal(0),
                "external_order_id": f"ext-{n}" if number else None,
                "external_order_number": number,
                "created_at": start + step * n,
                "updated_at": start + step * n,
                "document": documents[n % len(documents)],
                "review_status": "pending" if status == "RECEIVED" and n % 7 == 0 else None,
                "push_status": "failed" if status == "READY" and n % 11 == 0 else None,
            }
        )
    return rows


def seed(database: BenchDatabase, store_id: str, count: int, now: datetime) -> None:
    engine = create_engine(database.sync_url)
    rng = random.Random(6)
    try:
        for offset in range(0, count, 5_000):
            rows = _rows(store_id, min(5_000, count - offset), rng, now)
            for i, row in enumerate(rows):  # keep keys, numbers and emails unique overall
                n = offset + i
                row["idempotency_key"] = f"bench-{n}"
                if row["external_order_number"]:
                    row["external_order_number"] = f"#{100000 + n}"
                    row["external_order_id"] = f"ext-{n}"
                first_last = row["customer_email"].rsplit(".", 1)[0].rsplit(".", 1)[0]
                row["customer_email"] = f"{first_last}.{n}@example.com"
                row["created_at"] = row["updated_at"] = (
                    now - timedelta(days=120) + (timedelta(days=120) * n / count)
                )
            with engine.begin() as connection:
                connection.execute(insert(Order), rows)
        # What autovacuum would have done by the time a store has 100,000 orders: planner
        # statistics, and on PostgreSQL the visibility map that index-only scans rely on.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if database.backend == "postgresql":
                connection.exec_driver_sql("VACUUM ANALYZE orders")
            else:
                connection.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def _cases(store_id: str, sample: dict[str, Any], now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Each case is a list of query-parameter sets, cycled through by the timed requests."""
    week_ago = (now - timedelta(days=7)).date().isoformat()
    month = [(now - timedelta(days=d)).date().isoformat() for d in (60, 30)]
    return {
        "list": [{}],
        "filter status READY": [{"status": "READY"}],
        "filter country + status": [{"country": "SE", "status": "COMPLETED"}],
        "filter last 7 days": [{"from": week_ago}],
        "filter a month, 60 days back": [{"from": month[0], "to": month[1]}],
        "filter needs attention": [{"attention": "any"}],
        "search name (common)": [{"q": last} for last in LAST[:5]],
        "search name (absent)": [{"q": "Zzyzx"}],
        "search email": [{"q": sample["email"]}],
        "search order number": [{"q": sample["number"]}],
        "search order id": [{"q": sample["id"]}],
        "page 100 (cursor)": [{"after": sample["deep_cursor"]}],
    }


async def _measure(database: BenchDatabase, orders: int, requests: int, log: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="orderbridge-ui-bench-") as folder:
        settings = Settings(
            database_url=database.url,
            data_dir=Path(folder),
            worker_mode=WorkerMode.OFF,
            secret_keys="bench",
            db_pool_size=4,
        )
        container = build(settings)
        try:
            now = container.clock.now()
            async with container.db.transaction() as session:
                store = await stores.create_store(
                    session, name="Bench UI", currency="EUR", country="FR", now=now
                )
                user = await accounts.create_user(
                    session, email="bench@example.com", password=PASSWORD, now=now
                )
                await accounts.add_membership(
                    session, user=user, store_id=store.id, role=accounts.Role.OWNER, now=now
                )
            started = time.monotonic()
            await asyncio.to_thread(seed, database, store.id, orders, now)
            log(f"  seeded {orders:,} orders in {time.monotonic() - started:.0f} s")
            async with container.db.reader() as session:
                middle = await session.scalar(
                    select(Order)
                    .where(Order.store_id == store.id, Order.external_order_number.is_not(None))
                    .order_by(Order.id)
                    .offset(orders // 2)
                    .limit(1)
                )
                deep = await session.scalar(
                    select(Order.id)
                    .where(Order.store_id == store.id)
                    .order_by(Order.id.desc())
                    .offset(100 * 50)
                    .limit(1)
                )
            assert middle is not None and deep is not None
            sample = {
                "email": middle.customer_email,
                "number": middle.external_order_number,
                "id": order_public_id(store.id, middle.id),
                "deep_cursor": order_public_id(store.id, deep),
            }
            app = create_app(container, manage_container=False)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                return await _time_cases(client, store.id, sample, now, requests)
        finally:
            await container.close()


async def _time_cases(
    client: httpx.AsyncClient, store_id: str, sample: dict[str, Any], now: datetime, requests: int
) -> dict[str, Any]:
    import re

    page = await client.get("/account/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    signed = await client.post(
        "/account/login",
        data={"email": "bench@example.com", "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert signed.status_code == 303, signed.text
    path = f"/account/stores/{store_id}/orders"
    results: dict[str, Any] = {}
    for name, variants in _cases(store_id, sample, now).items():
        for params in variants[:2]:  # warm-up
            response = await client.get(path, params=params)
            assert response.status_code == 200, (name, response.status_code)
        timings = []
        rows = 0
        for i in range(requests):
            params = variants[i % len(variants)]
            began = time.perf_counter()
            response = await client.get(path, params=params)
            timings.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200
            rows = response.text.count('data-label="Order"')
        timings.sort()
        results[name] = {
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(timings[int(len(timings) * 0.95) - 1], 1),
            "rows_on_page": rows,
            "met": statistics.median(timings) < TARGET_P50_MS,
        }
    return results


def format_results(backend: str, results: dict[str, Any]) -> str:
    lines = [
        f"order list page, {backend}: p50 / p95 server time (target p50 < {TARGET_P50_MS:g} ms)"
    ]
    for name, r in results.items():
        mark = "" if r["met"] else "   MISSED"
        figures = f"{r['p50_ms']:7.1f} ms {r['p95_ms']:7.1f} ms  rows {r['rows_on_page']:3}"
        lines.append(f"  {name:30} {figures}{mark}")
    return "\n".join(lines)


def run(ctx: Any) -> None:
    """The ``ui-list`` scenario of ``python -m bench``, on the run's own database."""
    results = asyncio.run(_measure(ctx.database, 100_000, 50, ctx.log))
    ctx.results["ui_list"] = results
    ctx.log(format_results(ctx.database.backend, results))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_list", description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50, help="timed requests per case")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if not 1_000 <= args.orders <= 1_000_000 or not 5 <= args.requests <= 1_000:
        raise SystemExit("--orders must be 1000..1000000 and --requests 5..1000")
    backends = ["sqlite", "postgresql"] if args.backend == "all" else [args.backend]
    output: dict[str, Any] = {}

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    for backend in backends:
        log(f"{backend}:")
        with tempfile.TemporaryDirectory(prefix="orderbridge-ui-bench-db-") as folder:
            context = (
                sqlite_database(Path(folder))
                if backend == "sqlite"
                else postgres_database(args.postgres_url)
            )
            with context as database:
                output[backend] = asyncio.run(_measure(database, args.orders, args.requests, log))
        print(format_results(backend, output[backend]))
    if args.output:
        args.output.write_text(json.dumps(output, indent=2))
    missed = [f"{b}: {n}" for b, r in output.items() for n, c in r.items() if not c["met"]]
    print("all targets met" if not missed else "targets missed: " + "; ".join(missed))
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
