"""In-process cost per request, and where it goes: ``python -m bench.profile``.

The HTTP benchmark says how fast; this says why. It calls the ASGI apps directly (no
socket, no load generator, one request at a time), so the figure per request is the
service's own cost (CPU plus its database round trips), measured as paired runs of the
service and the bare endpoint in the same process. Then it repeats the service's requests
under cProfile and prints the functions that cost most. ``--experiment`` applies a
bench.experiments patch first, to price a proposed change the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from bench.baseline import create_baseline_app
from bench.databases import (
    DEFAULT_POSTGRES_URL,
    BenchDatabase,
    postgres_database,
    sqlite_database,
)
from bench.experiments import EXPERIMENTS, apply_experiments
from bench.payloads import order_body, order_templates
from bench.seed import StoreKeys, create_store_with_keys, seed_feed
from orderbridge.settings import Settings, WorkerMode

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


async def call(app: App, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
    """One request straight into the ASGI app; returns the status."""
    target, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": target,
        "raw_path": target.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # a disconnect never comes during a request
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


class Requests:
    """The same request sequence the HTTP benchmark sends, for one app."""

    def __init__(self, app: App, path: str, headers: dict[str, str], method: str) -> None:
        self.app, self.path, self.headers, self.method = app, path, headers, method
        self.templates = order_templates(1, 256) if method == "POST" else []
        self.prefix = uuid.uuid4().hex[:12]
        self.number = 0
        self.paths: list[str] = [path]

    async def run(self, count: int, expect: int) -> tuple[float, float, float]:
        """Per request over ``count`` sequential requests: wall seconds, CPU seconds of the
        whole process (the aiosqlite threads included) and SQL statements."""
        statements = len(STATEMENTS)
        cpu = time.process_time()
        started = time.perf_counter()
        for _ in range(count):
            self.number += 1
            headers = dict(self.headers)
            body = b""
            if self.method == "POST":
                headers["Idempotency-Key"] = f"{self.prefix}-{self.number}"
                body = order_body(self.templates, self.number)
            path = self.paths[self.number % len(self.paths)]
            status = await call(self.app, self.method, path, headers, body)
            if status != expect:
                raise RuntimeError(f"{self.method} {path} answered {status}, expected {expect}")
        wall = (time.perf_counter() - started) / count
        return wall, (time.process_time() - cpu) / count, (len(STATEMENTS) - statements) / count


STATEMENTS: list[str] = []


@event.listens_for(Engine, "before_cursor_execute")
def _count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    # Every statement any engine sends (BEGIN on SQLite included; psycopg's implicit BEGIN
    # and the commits are not cursor executions and are not counted).
    STATEMENTS.append(statement)


def _apps(database: BenchDatabase, work_dir: Path) -> tuple[App, App]:
    from orderbridge.api.app import create_app
    from orderbridge.bootstrap import build

    settings = Settings(database_url=database.url, data_dir=work_dir, worker_mode=WorkerMode.OFF)
    return create_app(build(settings)), create_baseline_app(database.url)


async def _measure(
    args: argparse.Namespace, database: BenchDatabase, keys: StoreKeys, work_dir: Path
) -> None:
    service_app, bare_app = _apps(database, work_dir)
    if args.scenario == "intake":
        service = Requests(
            service_app,
            f"/v2/checkout/{keys.store_id}/orders",
            {"Authorization": f"Bearer {keys.checkout_key}", "Content-Type": "application/json"},
            "POST",
        )
        bare = Requests(bare_app, "/orders", {"Content-Type": "application/json"}, "POST")
        expect = 201
    else:
        positions = seed_feed(database, keys.store_id, args.feed_events)
        cursors = [p.event_id() for p in positions[len(positions) // 10 :: 997][:200]]
        merchant = {"Authorization": f"Bearer {keys.merchant_key}"}
        service = Requests(service_app, "", merchant, "GET")
        page = "?limit=100&after_event_id="
        service.paths = [f"/v2/events/{keys.store_id}{page}{c}" for c in cursors]
        bare = Requests(bare_app, "", {}, "GET")
        bare.paths = [f"/events/{keys.store_id}{page}{c}" for c in cursors]
        expect = 200
    await service.run(args.warmup, expect)
    await bare.run(args.warmup, expect)
    service_runs, bare_runs = [], []
    for _ in range(args.rounds):  # paired, alternating: drift hits both
        bare_runs.append(await bare.run(args.requests, expect))
        service_runs.append(await service.run(args.requests, expect))
    print(f"{database.backend} {args.scenario}, one request at a time, best of {args.rounds}:")
    print(f"  {'':8}{'wall ms':>10}{'cpu ms':>10}{'SQL':>6}")
    best = {}
    for name, runs in (("service", service_runs), ("bare", bare_runs)):
        wall, cpu = min(r[0] for r in runs) * 1000, min(r[1] for r in runs) * 1000
        best[name] = (wall, cpu)
        print(f"  {name:8}{wall:>10.3f}{cpu:>10.3f}{runs[0][2]:>6.1f}")
    ratio = best["service"][1] / best["bare"][1]
    print(f"  the service costs {ratio:.1f}x the bare endpoint's CPU")
    # CPU time, not wall time: waits for the database, or for a CPU another process holds,
    # would otherwise be charged to whatever function was running.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    await service.run(args.requests, expect)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    if args.dump:
        stats.dump_stats(args.dump)
    stats.sort_stats(args.sort).print_stats(args.match or "", args.limit)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("scenario", choices=["intake", "feed"])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--feed-events", type=int, default=100_000)
    parser.add_argument("--experiment", action="append", default=[], choices=sorted(EXPERIMENTS))
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumulative"])
    parser.add_argument("--limit", type=int, default=35)
    parser.add_argument("--match", help="only functions whose path matches (e.g. orderbridge)")
    parser.add_argument("--dump", help="also write the raw cProfile stats here")
    args = parser.parse_args()
    if not (1 <= args.requests <= 100_000 and 1 <= args.rounds <= 20):
        raise SystemExit("--requests must be 1..100000 and --rounds 1..20")
    apply_experiments(args.experiment)
    with tempfile.TemporaryDirectory(prefix="orderbridge-profile-") as folder:
        work_dir = Path(folder)
        database: AbstractContextManager[BenchDatabase] = (
            sqlite_database(work_dir)
            if args.backend == "sqlite"
            else postgres_database(args.postgres_url)
        )
        with database as db:
            keys = asyncio.run(create_store_with_keys(db, "Bench profile"))
            asyncio.run(_measure(args, db, keys, work_dir))


if __name__ == "__main__":
    main()
