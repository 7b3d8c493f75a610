"""``python -m bench``: run the benchmarks and print the figures beside the bare endpoint.

Everything is bounded: each load phase stops at its duration (or a request cap), servers
and load generators are child processes stopped in ``finally``, and the PostgreSQL database
is dropped on the way out, also after Ctrl-C, SIGTERM or an error.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import report, servers
from bench.databases import DEFAULT_POSTGRES_URL, BenchDatabase, postgres_database, sqlite_database
from bench.experiments import EXPERIMENTS
from bench.scenarios import Context, Options, run_backend
from bench.seed import check_event_count

RESULTS = Path(__file__).resolve().parent / "results"
MAX_SECONDS = 600.0
SCENARIOS = ("webhooks", "pipeline", "intake", "feed", "push", "ui-list")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "all"], default="all")
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per intake phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each phase")
    parser.add_argument("--feed-duration", type=float, default=5.0, help="seconds per feed phase")
    parser.add_argument("--rounds", type=int, default=1, help="intake rounds (medians reported)")
    parser.add_argument("--concurrency", type=int, default=32, help="intake clients")
    parser.add_argument("--feed-concurrency", default="1,8", help="feed clients, comma-separated")
    parser.add_argument("--feed-events", type=int, default=100_000)
    parser.add_argument("--webhook-deliveries", type=int, default=20_000)
    parser.add_argument(
        "--webhook-concurrency",
        type=int,
        default=100,
        help="the endpoint's max_concurrency (API bound: 100) and the bare loop's clients",
    )
    parser.add_argument("--no-fairness", action="store_true", help="skip the slow-endpoint run")
    parser.add_argument("--pipeline-orders", type=int, default=5_000)
    parser.add_argument(
        "--pipeline-concurrency",
        type=int,
        default=32,
        help="intake clients (as the intake scenario)",
    )
    parser.add_argument(
        "--pipeline-workers", type=int, help="worker processes (default: PostgreSQL 2, SQLite 1)"
    )
    parser.add_argument(
        "--push-orders", type=int, default=300, help="orders pushed to Vendure (each way)"
    )
    parser.add_argument(
        "--raw-duration", type=float, default=10.0, help="seconds of each raw-rate run"
    )
    parser.add_argument(
        "--worker-loop",
        choices=["asyncio", "uvloop"],
        default="uvloop",
        help="event loop of the worker processes (orderbridge worker: uvloop when installed)",
    )
    parser.add_argument(
        "--profile-workers",
        action="store_true",
        help="cProfile the dispatcher and pipeline worker processes (written next to --output)",
    )
    parser.add_argument("--quick", action="store_true", help="short phases (a smoke run)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("ORDERBRIDGE_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="server to create the throwaway database on (env ORDERBRIDGE_BENCH_POSTGRES_URL)",
    )
    parser.add_argument(
        "--worker",
        choices=["off", "embedded"],
        default="off",
        help="the service's worker mode (off: jobs queue up, as with a separate worker fleet)",
    )
    parser.add_argument("--pool-size", type=int, default=10, help="db_pool_size of both apps")
    parser.add_argument(
        "--api-processes",
        type=int,
        default=1,
        help="processes serving the service's port, and the bare endpoint's alike",
    )
    parser.add_argument(
        "--experiment",
        action="append",
        default=[],
        choices=sorted(EXPERIMENTS),
        help="bench-only patch of the service (see bench/experiments.py)",
    )
    parser.add_argument(
        "--profile",
        choices=["cprofile", "pyinstrument"],
        help="profile the service process; written next to --output",
    )
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    return parser


def _options(args: argparse.Namespace) -> Options:
    if args.quick:
        args.duration, args.warmup, args.feed_duration = 3.0, 1.0, 2.0
        args.webhook_deliveries, args.pipeline_orders, args.raw_duration = 5_000, 1_500, 3.0
        args.push_orders = 100
    for name in ("duration", "warmup", "feed_duration", "raw_duration"):
        value = getattr(args, name)
        if not 0 <= value <= MAX_SECONDS:
            raise SystemExit(f"--{name.replace('_', '-')} must be between 0 and {MAX_SECONDS:g}")
    if not 1 <= args.rounds <= 20 or not 1 <= args.concurrency <= 1024:
        raise SystemExit("--rounds must be 1..20 and --concurrency 1..1024")
    check_event_count(args.feed_events)
    if not 100 <= args.webhook_deliveries <= 200_000 or not 1 <= args.webhook_concurrency <= 100:
        raise SystemExit("--webhook-deliveries must be 100..200000, --webhook-concurrency 1..100")
    if not 10 <= args.pipeline_orders <= 100_000 or not 1 <= args.pipeline_concurrency <= 256:
        raise SystemExit("--pipeline-orders must be 10..100000, --pipeline-concurrency 1..256")
    if not 10 <= args.push_orders <= 10_000:
        raise SystemExit("--push-orders must be 10..10000")
    if not 1 <= args.api_processes <= 8:
        raise SystemExit("--api-processes must be 1..8")
    if args.pipeline_workers is not None and not 1 <= args.pipeline_workers <= 8:
        raise SystemExit("--pipeline-workers must be 1..8")
    return Options(
        duration=args.duration,
        warmup=args.warmup,
        feed_duration=args.feed_duration,
        concurrency=args.concurrency,
        feed_concurrency=tuple(int(c) for c in args.feed_concurrency.split(",") if c),
        rounds=args.rounds,
        feed_events=args.feed_events,
        scenarios=SCENARIOS if args.scenario == "all" else (args.scenario,),
        worker=args.worker,
        pool_size=args.pool_size,
        api_processes=args.api_processes,
        experiments=tuple(args.experiment),
        profile=args.profile,
        results_dir=args.output.parent,
        webhook_deliveries=args.webhook_deliveries,
        webhook_concurrency=args.webhook_concurrency,
        webhook_fairness=not args.no_fairness,
        pipeline_orders=args.pipeline_orders,
        pipeline_concurrency=args.pipeline_concurrency,
        pipeline_workers=args.pipeline_workers,
        raw_duration=args.raw_duration,
        push_orders=args.push_orders,
        worker_loop=args.worker_loop,
        profile_workers=args.profile_workers,
    )


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM takes the same way out as Ctrl-C, through every finally below.
    raise KeyboardInterrupt(f"signal {signum}")


def _database(
    backend: str, args: argparse.Namespace, work_dir: Path
) -> AbstractContextManager[BenchDatabase]:
    if backend == "sqlite":
        return sqlite_database(work_dir)
    return postgres_database(args.postgres_url)


def main() -> int:
    args = _parser().parse_args()
    options = _options(args)
    signal.signal(signal.SIGTERM, _terminate)
    backends = ["sqlite", "postgresql"] if args.backend == "all" else [args.backend]
    output: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()},
        "backends": {},
    }
    options.results_dir.mkdir(parents=True, exist_ok=True)
    try:
        for backend in backends:
            with tempfile.TemporaryDirectory(prefix=f"orderbridge-bench-{backend}-") as folder:
                work_dir = Path(folder)
                _log(f"{report.TITLES[backend]}:")
                started = time.monotonic()
                with _database(backend, args, work_dir) as database:
                    result = run_backend(Context(database, options, work_dir, _log))
                result["targets"] = report.check_targets(result, backend)
                result["seconds"] = round(time.monotonic() - started, 1)
                output["backends"][backend] = result
    except KeyboardInterrupt:
        _log("interrupted: stopping servers and dropping databases")
        return 130
    finally:
        servers.stop_all()
    report.write_json(args.output, output)
    print()
    for backend, result in output["backends"].items():
        print(report.format_backend(backend, result))
        print()
    print(f"figures: {args.output}")
    missed = [
        f"{backend}: {name}"
        for backend, result in output["backends"].items()
        for name, target in result["targets"].items()
        if not target["met"]
    ]
    print("all targets met" if not missed else "targets missed: " + "; ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
