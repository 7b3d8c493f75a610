"""A server process of the benchmark: ``python -m bench.serve service|baseline ...``.

Both apps run on the same uvicorn settings (one process, uvloop and httptools when
installed, no access log) on a listening socket inherited from the harness (``--fd``), so
the harness knows the port before the child starts and no other process can take it.
``--profile`` wraps the whole server in cProfile or pyinstrument and writes the result when
the server stops (SIGTERM from the harness); ``--experiment`` applies bench-only changes
from bench.experiments before the app is built.
"""

from __future__ import annotations

import argparse
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import uvicorn
from fastapi import FastAPI

from bench.experiments import EXPERIMENTS, apply_experiments
from orderbridge.settings import Settings, WorkerMode


def _service_app(args: argparse.Namespace) -> FastAPI:
    from orderbridge.api.app import create_app
    from orderbridge.bootstrap import build

    settings = Settings(
        database_url=args.database_url,
        data_dir=Path(args.data_dir),
        worker_mode=WorkerMode(args.worker),
        db_pool_size=args.pool_size,
    )
    return create_app(build(settings))


def _baseline_app(args: argparse.Namespace) -> FastAPI:
    from bench.baseline import create_baseline_app

    return create_baseline_app(args.database_url, pool_size=args.pool_size)


APPS: dict[str, Callable[[argparse.Namespace], FastAPI]] = {
    "service": _service_app,
    "baseline": _baseline_app,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("app", choices=sorted(APPS))
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--fd", type=int, required=True, help="inherited listening socket")
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--worker", choices=[m.value for m in WorkerMode], default="off")
    parser.add_argument("--experiment", action="append", default=[], choices=sorted(EXPERIMENTS))
    parser.add_argument("--profile", choices=["cprofile", "pyinstrument"])
    parser.add_argument("--profile-out", help="where the profile goes")
    return parser


def _serve(app: FastAPI, listener: socket.socket) -> None:
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[listener])


def _exit(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    args = _parser().parse_args()
    # uvicorn re-raises the SIGTERM it caught once it has shut down; exiting through
    # SystemExit instead of dying from the signal lets a profiler write its report.
    signal.signal(signal.SIGTERM, _exit)
    apply_experiments(args.experiment)
    app = APPS[args.app](args)
    listener = socket.socket(fileno=args.fd)
    if args.profile == "cprofile":
        import cProfile

        profiler = cProfile.Profile()
        try:
            profiler.runcall(_serve, app, listener)
        finally:
            profiler.dump_stats(args.profile_out)
    elif args.profile == "pyinstrument":
        from pyinstrument import Profiler

        sampler = Profiler(interval=0.0005)
        sampler.start()
        try:
            _serve(app, listener)
        finally:
            sampler.stop()
            report = sampler.output_text(unicode=True, show_all=False)
            Path(args.profile_out).write_text(report)
    else:
        _serve(app, listener)


if __name__ == "__main__":
    main()
