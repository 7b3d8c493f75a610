"""The pipeline worker's own cost per order, in process: ``python -m bench.pipeline_worker``.

The pipeline scenario measures orders/s with the API, the workers, the database and the load
generator sharing the machine, and its worker batches are as large as the intake rate makes
them. This takes the worker alone: N orders (the scenario's French buyers, a German store,
all four steps) are received through ``OrderService.receive`` first, then the container's
worker (the real handlers, the settings' options) runs them until none is left, as
``orderbridge worker`` would after a backlog. Printed: the worker's CPU per order (this
process only, not the database server's), wall time per order and the statements sent per
order (an executemany counts once). ``--profile FILE`` writes a cProfile of the run.

    python -m bench.pipeline_worker --backend postgresql --orders 2000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, func, select

from bench.databases import DEFAULT_POSTGRES_URL, BenchDatabase, postgres_database, sqlite_database
from bench.payloads import buyer_body, buyer_templates
from bench.pipeline import STORE_COUNTRY
from bench.seed import create_store_with_keys
from orderbridge.bootstrap import build
from orderbridge.db.models import Order
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.settings import Settings, WorkerMode


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(database: BenchDatabase, orders: int, profile: str | None) -> dict[str, Any]:
    keys = await create_store_with_keys(database, "Bench pipeline worker", country=STORE_COUNTRY)
    settings = Settings(
        database_url=database.url,
        data_dir=Path(tempfile.mkdtemp(prefix="orderbridge-bench-")),
        worker_mode=WorkerMode.OFF,
        webhook_dispatcher=False,
    )
    container = build(settings)
    try:
        templates = buyer_templates(1, 64)
        for start in range(0, orders, 100):
            async with container.db.transaction() as session:
                for n in range(start, min(orders, start + 100)):
                    body = CheckoutOrder.model_validate(orjson.loads(buyer_body(templates, n)))
                    await container.orders.receive(session, keys.store_id, f"bench-{n}", body)
        statements = 0

        @event.listens_for(container.db.write_engine.sync_engine, "before_cursor_execute")
        def _count(*_: object) -> None:
            nonlocal statements
            statements += 1

        worker = container.worker()
        profiler = cProfile.Profile()
        cpu, wall = _cpu_seconds(), time.perf_counter()
        if profile:
            profiler.enable()
        ran = await worker.run_until_idle()
        profiler.disable()
        cpu, wall = _cpu_seconds() - cpu, time.perf_counter() - wall
        if profile:
            profiler.dump_stats(profile)
        async with container.db.reader() as session:
            rows = await session.execute(select(Order.status, func.count()).group_by(Order.status))
            statuses = {status: int(count) for status, count in rows.all()}
    finally:
        await container.close()
    return {
        "backend": database.backend,
        "orders": orders,
        "jobs": ran,
        "statuses": statuses,
        "cpu_ms_per_order": cpu * 1000 / orders,
        "wall_ms_per_order": wall * 1000 / orders,
        "statements_per_order": statements / orders,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_worker")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--profile", help="write a cProfile of the worker's run here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.backend == "postgresql":
            with postgres_database(args.postgres_url) as database:
                result = asyncio.run(measure(database, args.orders, args.profile))
        else:
            with sqlite_database(Path(folder)) as database:
                result = asyncio.run(measure(database, args.orders, args.profile))
    print(
        f"{result['backend']}: {result['orders']:,} orders ({result['statuses']}), worker "
        f"CPU {result['cpu_ms_per_order']:.2f} ms/order, wall {result['wall_ms_per_order']:.2f} "
        f"ms/order, {result['statements_per_order']:.1f} statements/order"
        + (" (profiled: CPU inflated)" if args.profile else "")
    )


if __name__ == "__main__":
    main()
