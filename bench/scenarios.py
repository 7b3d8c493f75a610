"""The measured scenarios of one backend: webhooks (bench.webhooks) and the pipeline
(bench.pipeline) on the fresh database first, then intake against the bare INSERT and the
feed against the bare SELECT and the bare INSERT at low concurrency. Intake runs with the
worker off and leaves its orders' jobs queued, which is why it comes after the pipeline.

Order of work: create the stores (service layer), seed the feed store's events, start the
bare server and the service, then run the load phases one after the other, alternating bare
and service for each intake round so that drift from other work on the machine hits both.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import servers
from bench.databases import BenchDatabase
from bench.load import LoadSpec
from bench.seed import StoreKeys, create_store_with_keys, seed_feed
from orderbridge.ids import FeedPosition

MAX_REQUESTS_PER_PHASE = 2_000_000  # a bound on top of the duration
PAGE = 100
CURSORS = 2_000


@dataclass(frozen=True)
class Options:
    duration: float
    warmup: float
    feed_duration: float
    concurrency: int
    feed_concurrency: tuple[int, ...]
    rounds: int
    feed_events: int
    scenarios: tuple[str, ...]
    worker: str
    pool_size: int
    api_processes: int = 1
    experiments: tuple[str, ...] = ()
    profile: str | None = None
    webhook_deliveries: int = 20_000
    webhook_concurrency: int = 100
    webhook_fairness: bool = True
    pipeline_orders: int = 5_000
    pipeline_concurrency: int = 32
    pipeline_workers: int | None = None  # None: 2 on PostgreSQL, 1 on SQLite
    raw_duration: float = 10.0
    push_orders: int = 300
    worker_loop: str = "uvloop"  # bench.worker's event loop (orderbridge worker: uvloop)
    profile_workers: bool = False
    results_dir: Path = Path("bench/results")
    seed: int = 1


@dataclass
class Context:
    database: BenchDatabase
    options: Options
    work_dir: Path
    log: Any  # a print-like callable for progress lines
    results: dict[str, Any] = field(default_factory=dict)


def run_load(spec: LoadSpec, server: servers.Server, work_dir: Path) -> dict[str, Any]:
    """One load phase in its own process; the process dies with the harness (run kills it).
    Adds the server's CPU per request (warm-up included, on both sides of the division)."""
    cpu_before = servers.cpu_seconds(server)
    client_before = _children_cpu()
    spec_file = work_dir / f"load-{uuid.uuid4().hex[:8]}.json"
    spec_file.write_text(json.dumps(asdict(spec)))
    completed = subprocess.run(
        [sys.executable, "-m", "bench.load", str(spec_file)],
        cwd=servers.REPO,
        capture_output=True,
        timeout=spec.warmup + spec.duration + 120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{completed.stderr.decode()[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout)
    cpu_after = servers.cpu_seconds(server)
    answered = result["requests"] + result["warmup_requests"]
    if cpu_before is not None and cpu_after is not None and answered:
        result["server_cpu_ms_per_request"] = (cpu_after - cpu_before) * 1000 / answered
    if answered:
        result["client_cpu_ms_per_request"] = (_children_cpu() - client_before) * 1000 / answered
    return result


def _children_cpu() -> float:
    """User + system CPU of the harness's finished children: the load generator's, once
    ``subprocess.run`` has waited for it (the servers are still running, so not counted)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _intake_spec(
    ctx: Context,
    server: servers.Server,
    path: str,
    headers: dict[str, str],
    expect: int,
    concurrency: int,
    duration: float,
) -> LoadSpec:
    return LoadSpec(
        base_url=server.base_url,
        method="POST",
        paths=[path],
        headers=headers,
        concurrency=concurrency,
        warmup=ctx.options.warmup,
        duration=duration,
        max_requests=MAX_REQUESTS_PER_PHASE,
        expect_status=expect,
        seed=ctx.options.seed,
        key_prefix=uuid.uuid4().hex[:12],
    )


def _median_result(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure, the median over rounds (a single round is returned as it is)."""
    if len(results) == 1:
        return results[0]
    latency = {
        key: statistics.median(r["latency"][key] for r in results) for key in results[0]["latency"]
    }
    cpu = [r["server_cpu_ms_per_request"] for r in results if "server_cpu_ms_per_request" in r]
    return {
        "server_cpu_ms_per_request": statistics.median(cpu) if cpu else None,
        "rps": statistics.median(r["rps"] for r in results),
        "requests": sum(r["requests"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "statuses": _merge_statuses(results),
        "latency": latency,
        "rounds": len(results),
    }


def _merge_statuses(results: list[dict[str, Any]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for result in results:
        for status, count in result["statuses"].items():
            merged[status] = merged.get(status, 0) + count
    return merged


def intake(ctx: Context, bare: servers.Server, service: servers.Server, keys: StoreKeys) -> None:
    options = ctx.options
    rounds = []
    for number in range(1, options.rounds + 1):
        ctx.log(f"  intake round {number}/{options.rounds}: bare INSERT, c={options.concurrency}")
        bare_result = run_load(
            _intake_spec(ctx, bare, "/orders", {}, 201, options.concurrency, options.duration),
            bare,
            ctx.work_dir,
        )
        ctx.log(f"  intake round {number}/{options.rounds}: service, c={options.concurrency}")
        service_result = run_load(
            _intake_spec(
                ctx,
                service,
                f"/v2/checkout/{keys.store_id}/orders",
                {"Authorization": f"Bearer {keys.checkout_key}"},
                201,
                options.concurrency,
                options.duration,
            ),
            service,
            ctx.work_dir,
        )
        rounds.append({"bare": bare_result, "service": service_result})
    ctx.results["intake"] = {
        "concurrency": options.concurrency,
        "rounds": rounds,
        "bare": _median_result([r["bare"] for r in rounds]),
        "service": _median_result([r["service"] for r in rounds]),
    }


def _pick_cursors(positions: list[FeedPosition], seed: int) -> list[str]:
    """Random cursors that each have a full page after them."""
    if len(positions) <= PAGE:
        raise ValueError("the feed needs more events than a page")
    rng = random.Random(seed)
    candidates = positions[: len(positions) - PAGE]
    return [rng.choice(candidates).event_id() for _ in range(CURSORS)]


def _check_page(service: servers.Server, path: str, keys: StoreKeys) -> None:
    """One page before timing: the service must answer 100 events for these cursors."""
    request = urllib.request.Request(
        service.base_url + path, headers={"Authorization": f"Bearer {keys.merchant_key}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        page = json.loads(answer.read())
    if len(page["events"]) != PAGE:
        raise RuntimeError(f"feed page has {len(page['events'])} events, expected {PAGE}")


def feed(
    ctx: Context,
    bare: servers.Server,
    service: servers.Server,
    keys: StoreKeys,
    positions: list[FeedPosition],
) -> None:
    options = ctx.options
    cursors = _pick_cursors(positions, options.seed)
    feed_paths = [f"/v2/events/{keys.store_id}?after_event_id={c}&limit={PAGE}" for c in cursors]
    bare_paths = [f"/events/{keys.store_id}?after_event_id={c}&limit={PAGE}" for c in cursors]
    _check_page(service, feed_paths[0], keys)
    levels: dict[str, Any] = {}
    for concurrency in options.feed_concurrency:

        def get(
            server: servers.Server,
            paths: list[str],
            headers: dict[str, str],
            concurrency: int = concurrency,
        ) -> dict[str, Any]:
            spec = LoadSpec(
                base_url=server.base_url,
                method="GET",
                paths=paths,
                headers=headers,
                concurrency=concurrency,
                warmup=options.warmup,
                duration=options.feed_duration,
                max_requests=MAX_REQUESTS_PER_PHASE,
                expect_status=200,
                seed=options.seed,
            )
            return run_load(spec, server, ctx.work_dir)

        ctx.log(f"  feed c={concurrency}: service, bare SELECT, bare INSERT")
        merchant = {"Authorization": f"Bearer {keys.merchant_key}"}
        levels[str(concurrency)] = {
            "service": get(service, feed_paths, merchant),
            "bare_select": get(bare, bare_paths, {}),
            "bare_insert": run_load(
                _intake_spec(ctx, bare, "/orders", {}, 201, concurrency, options.feed_duration),
                bare,
                ctx.work_dir,
            ),
        }
    ctx.results["feed"] = {"events": len(positions), "page": PAGE, "levels": levels}


def server_arguments(ctx: Context, app: str) -> list[str]:
    arguments = [
        app,
        "--database-url", ctx.database.url,
        "--data-dir", str(ctx.work_dir),
        "--pool-size", str(ctx.options.pool_size),
    ]  # fmt: skip
    if app == "service":
        arguments += ["--worker", ctx.options.worker]
        for name in ctx.options.experiments:
            arguments += ["--experiment", name]
        if ctx.options.profile:
            suffix = "prof" if ctx.options.profile == "cprofile" else "txt"
            out = ctx.options.results_dir.resolve() / f"profile-{ctx.database.backend}.{suffix}"
            arguments += ["--profile", ctx.options.profile, "--profile-out", str(out)]
            ctx.results["profile"] = str(out)
    return arguments


def run_backend(ctx: Context) -> dict[str, Any]:
    # Imported here: both modules build on this one (Context, run_load).
    from bench import pipeline, push, webhooks

    options = ctx.options
    backend = ctx.database.backend
    if "webhooks" in options.scenarios:
        webhooks.run(ctx)
    if "pipeline" in options.scenarios:
        pipeline.run(ctx)
    if "push" in options.scenarios:
        push.run(ctx)
    if "ui-list" in options.scenarios:
        from bench import ui_list

        ui_list.run(ctx)
    if "intake" not in options.scenarios and "feed" not in options.scenarios:
        return ctx.results
    intake_keys = asyncio.run(create_store_with_keys(ctx.database, "Bench intake"))
    feed_keys = asyncio.run(create_store_with_keys(ctx.database, "Bench feed"))
    positions: list[FeedPosition] = []
    if "feed" in options.scenarios:
        ctx.log(f"  seeding {options.feed_events:,} events")
        started = time.monotonic()
        positions = seed_feed(ctx.database, feed_keys.store_id, options.feed_events)
        ctx.results["seed_seconds"] = round(time.monotonic() - started, 2)
    processes = options.api_processes
    bare = servers.start(
        f"{backend}-bare", server_arguments(ctx, "baseline"), ctx.work_dir, processes=processes
    )
    service = servers.start(
        f"{backend}-service", server_arguments(ctx, "service"), ctx.work_dir, processes=processes
    )
    try:
        if "intake" in options.scenarios:
            intake(ctx, bare, service, intake_keys)
        if "feed" in options.scenarios:
            feed(ctx, bare, service, feed_keys, positions)
    finally:
        servers.stop(service)
        servers.stop(bare)
    return ctx.results
