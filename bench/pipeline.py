"""The pipeline scenario: orders from intake to READY, all processing steps on, beside the
raw transaction rate of the same database measured in the same run.

- **The service**: the API (bench.serve, worker off) and worker processes (bench.worker:
  what ``orderbridge worker`` runs, webhook dispatcher included, idle since the store has
  no endpoint) on the run's database; 2 workers on PostgreSQL, 1 on SQLite by default.
- **The orders**: a fixed number submitted through ``POST /v2/checkout/{store}/orders`` by
  the load generator (bench.load, ``bodies="buyers"``) at a fixed concurrency: valid
  ``sample_order`` bodies, environment ``test``, provider ``test``, each from a distinct
  French buyer (see bench.payloads). The store is in Germany, so every order crosses a
  border: payment, prohibited goods, fraud and capture all run (the default configuration).
- **The figure**: orders over the time from the first order's ``created_at`` (the API's
  clock) to the last order's ``updated_at`` as it left RECEIVED (a worker's clock), read
  from the rows once none is RECEIVED any more. Any order not READY is shown.
- **The raw rate**: the same transaction shape as machine-limits' "order transition", one
  INSERT of a 1 KB row and one UPDATE of its status per transaction, on the same database:
  ``pgbench -M prepared -c 2 -j 2 -T 10`` with that script on PostgreSQL, a Python
  ``sqlite3`` loop on SQLite (one writer, WAL, synchronous NORMAL: the service's pragmas).
  Measured before and after the orders; both are kept, their mean is shown.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, func, select, text

from bench import servers
from bench.databases import BenchDatabase
from bench.load import LoadSpec
from bench.scenarios import Context, run_load, server_arguments
from bench.seed import create_store_with_keys
from bench.webhooks import start_worker
from orderbridge.db.models import Job, Order

STORE_COUNTRY = "DE"  # the buyers are French: every order is cross-border
RAW_TABLE = "bench_raw_orders"
RAW_BODY = "x" * 1000
POLL = 0.1


# ---- the raw transaction rate -------------------------------------------------------------


def _pgbench() -> str:
    found = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    if not Path(found).exists():
        raise RuntimeError("pgbench not found (it comes with PostgreSQL)")
    return found


def _raw_postgres(database: BenchDatabase, work_dir: Path, seconds: float) -> dict[str, Any]:
    engine = create_engine(database.sync_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    f"CREATE TABLE IF NOT EXISTS {RAW_TABLE} "
                    "(id bigserial PRIMARY KEY, status text NOT NULL, body text NOT NULL)"
                )
            )
    finally:
        engine.dispose()
    script = work_dir / "order-transition.sql"
    script.write_text(
        "BEGIN;\n"
        f"INSERT INTO {RAW_TABLE} (status, body) VALUES ('RECEIVED', '{RAW_BODY}')"
        " RETURNING id \\gset\n"
        f"UPDATE {RAW_TABLE} SET status = 'READY' WHERE id = :id;\n"
        "END;\n"
    )
    libpq = database.sync_url.replace("postgresql+psycopg://", "postgresql://", 1)
    command = [
        _pgbench(), "-n", "-M", "prepared", "-c", "2", "-j", "2",
        "-T", str(max(1, round(seconds))), "-f", str(script), libpq,
    ]  # fmt: skip
    completed = subprocess.run(
        command, capture_output=True, timeout=seconds + 60, check=False, text=True
    )
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", completed.stdout)
    if completed.returncode != 0 or found is None:
        raise RuntimeError(f"pgbench failed:\n{completed.stdout[-2000:]}{completed.stderr[-2000:]}")
    return {
        "tps": float(found.group(1)),
        "tool": "pgbench -M prepared -c 2 -j 2",
        "seconds": seconds,
    }


def _raw_sqlite(database: BenchDatabase, seconds: float) -> dict[str, Any]:
    path = database.url.removeprefix("sqlite:///")
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=10000")
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {RAW_TABLE} "
            "(id INTEGER PRIMARY KEY, status TEXT NOT NULL, body TEXT NOT NULL)"
        )
        done = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            connection.execute("BEGIN IMMEDIATE")
            row_id = connection.execute(
                f"INSERT INTO {RAW_TABLE} (status, body) VALUES ('RECEIVED', ?)", (RAW_BODY,)
            ).lastrowid
            connection.execute(f"UPDATE {RAW_TABLE} SET status = 'READY' WHERE id = ?", (row_id,))
            connection.execute("COMMIT")
            done += 1
        elapsed = time.perf_counter() - started
    finally:
        connection.close()
    return {"tps": done / elapsed, "tool": "python sqlite3, one connection", "seconds": seconds}


def raw_rate(ctx: Context) -> dict[str, Any]:
    seconds = ctx.options.raw_duration
    if ctx.database.backend == "postgresql":
        return _raw_postgres(ctx.database, ctx.work_dir, seconds)
    return _raw_sqlite(ctx.database, seconds)


# ---- the orders ---------------------------------------------------------------------------


def _by_status(engine: Engine, store_id: str) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(Order.status, func.count()).where(Order.store_id == store_id)
            .group_by(Order.status)
        ).all()  # fmt: skip
    return {row[0]: int(row[1]) for row in rows}


def _wait_processed(
    engine: Engine, store_id: str, count: int, workers: list[servers.Server]
) -> dict[str, int]:
    deadline = time.monotonic() + 60 + count / 20  # bounded: 20 orders/s at the very least
    while True:
        statuses = _by_status(engine, store_id)
        if sum(statuses.values()) >= count and not statuses.get("RECEIVED"):
            return statuses
        for worker in workers:
            if worker.process.poll() is not None:
                raise RuntimeError(f"{worker.name} exited:\n{worker.log_tail()}")
        if time.monotonic() > deadline:
            with engine.connect() as connection:
                jobs = connection.execute(
                    select(Job.status, func.count()).group_by(Job.status)
                ).all()
            logs = "\n".join(w.log_tail(15) for w in workers)
            raise RuntimeError(f"orders not processed in time: {statuses}, jobs {jobs}\n{logs}")
        time.sleep(POLL)


def _span(engine: Engine, store_id: str) -> tuple[datetime, datetime]:
    with engine.connect() as connection:
        first = connection.scalar(
            select(Order.created_at).where(Order.store_id == store_id).order_by(Order.created_at)
        )
        last = connection.scalar(
            select(Order.updated_at)
            .where(Order.store_id == store_id)
            .order_by(Order.updated_at.desc())
            .limit(1)
        )
    assert first is not None and last is not None
    return first, last


def run(ctx: Context) -> None:
    options = ctx.options
    backend = ctx.database.backend
    count = options.pipeline_orders
    workers_wanted = options.pipeline_workers or (2 if backend == "postgresql" else 1)
    keys = asyncio.run(
        create_store_with_keys(ctx.database, "Bench pipeline", country=STORE_COUNTRY)
    )
    ctx.log(f"  pipeline: raw transaction rate ({options.raw_duration:g} s)")
    raw = [raw_rate(ctx)]
    engine = create_engine(ctx.database.sync_url)
    api = servers.start(
        f"{backend}-pipeline-api",
        server_arguments(ctx, "service"),
        ctx.work_dir,
        processes=ctx.options.api_processes,
    )
    workers: list[servers.Server] = []
    try:
        for number in range(workers_wanted):
            profile = None
            if options.profile_workers:
                out = options.results_dir.resolve() / f"profile-worker-{backend}-{number}.prof"
                profile = str(out)
                ctx.results.setdefault("pipeline_profiles", []).append(profile)
            workers.append(
                start_worker(ctx, f"{backend}-pipeline-worker-{number}", profile=profile)
            )
        cpu_before = [servers.cpu_seconds(p) for p in (api, *workers)]
        ctx.log(
            f"  pipeline: {count:,} orders, c={options.pipeline_concurrency}, "
            f"{workers_wanted} worker process(es)"
        )
        spec = LoadSpec(
            base_url=api.base_url,
            method="POST",
            paths=[f"/v2/checkout/{keys.store_id}/orders"],
            headers={"Authorization": f"Bearer {keys.checkout_key}"},
            concurrency=options.pipeline_concurrency,
            warmup=0.0,
            duration=600.0,
            max_requests=count,
            expect_status=201,
            seed=options.seed,
            templates=256,
            bodies="buyers",
        )
        intake = run_load(spec, api, ctx.work_dir)
        if intake["errors"]:
            raise RuntimeError(f"intake answered errors: {intake['statuses']}")
        statuses = _wait_processed(engine, keys.store_id, intake["requests"], workers)
        cpu_after = [servers.cpu_seconds(p) for p in (api, *workers)]
    finally:
        for worker in workers:
            servers.stop(worker)
        servers.stop(api)
    first, last = _span(engine, keys.store_id)
    engine.dispose()
    ctx.log("  pipeline: raw transaction rate again")
    raw.append(raw_rate(ctx))
    seconds = (last - first).total_seconds()
    processed = sum(statuses.values())
    cpu = {}
    for name, before, after in zip(
        ["api", *(f"worker{n}" for n in range(len(workers)))], cpu_before, cpu_after, strict=True
    ):
        if before is not None and after is not None and processed:
            cpu[name] = (after - before) * 1000 / processed
    ctx.results["pipeline"] = {
        "orders": processed,
        "concurrency": options.pipeline_concurrency,
        "workers": workers_wanted,
        "seconds": seconds,
        "rate": processed / seconds if seconds > 0 else 0.0,
        "statuses": statuses,
        "intake": intake,
        "cpu_ms_per_order": cpu,
        "raw": {"tps": sum(r["tps"] for r in raw) / len(raw), "runs": raw},
    }
