"""A worker process of the benchmark: ``python -m bench.worker --database-url ... ``.

It runs exactly what ``orderbridge worker`` runs (``runtime.start_background``: the job
worker and, unless ``--no-dispatcher``, the webhook dispatcher) on settings given on the
command line instead of the environment, so that the harness can also wrap it in cProfile
(``--profile-out``) and apply bench.experiments (``--experiment``). It writes ``ready`` to
``--ready-file`` once the container is built and stops on SIGTERM, letting running jobs and
in-flight deliveries finish first, as ``orderbridge worker`` does. Its event loop is
uvloop, as in ``orderbridge worker`` (``--loop asyncio`` prices asyncio's own).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from bench.experiments import EXPERIMENTS, apply_experiments
from bench.load import run_with_fast_loop
from orderbridge.settings import Settings, WorkerMode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.worker")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--no-dispatcher", action="store_true", help="jobs only")
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--experiment", action="append", default=[], choices=sorted(EXPERIMENTS))
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument("--profile-out", help="run under cProfile and write the stats here")
    return parser


async def _work(args: argparse.Namespace) -> None:
    from orderbridge.bootstrap import build
    from orderbridge.runtime import start_background

    settings = Settings(
        database_url=args.database_url,
        data_dir=Path(args.data_dir),
        worker_mode=WorkerMode.OFF,
        db_pool_size=args.pool_size,
        webhook_dispatcher=not args.no_dispatcher,
        outbound_allow_private=True,  # the receiver is on loopback
    )
    container = build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        tasks = start_background(container, stop)
        args.ready_file.write_text("ready")
        await asyncio.gather(*tasks)
    finally:
        await container.close()


def main() -> None:
    args = _parser().parse_args()
    apply_experiments(args.experiment)
    run = run_with_fast_loop if args.loop == "uvloop" else asyncio.run
    if not args.profile_out:
        run(_work(args))
        return
    import cProfile

    profiler = cProfile.Profile()
    try:
        profiler.runcall(run, _work(args))
    finally:
        profiler.dump_stats(args.profile_out)


if __name__ == "__main__":
    main()
