"""The load generator, run in its own process: ``python -m bench.load SPEC.json`` prints one
JSON result on stdout.

A closed loop: ``concurrency`` workers share one aiohttp session with as many connections,
each sending its next request as soon as the previous answer is read. A warm-up (answers
discarded) comes first, then the measured phase, which ends at ``duration`` seconds or after
``max_requests`` requests, whichever is first. Any answer other than ``expect_status`` is an
error, as is a connection failure or a timeout; all are counted and reported by status.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bench.payloads import buyer_body, buyer_templates, order_body, order_templates
from bench.stats import summarize

REQUEST_TIMEOUT = 30.0
T = TypeVar("T")


def run_with_fast_loop(work: Coroutine[Any, Any, T]) -> T:
    """uvloop when present (uvicorn[standard] installs it): the loop the servers use too."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(work)
    return uvloop.run(work)


@dataclass(frozen=True)
class LoadSpec:
    base_url: str
    method: str  # "POST": intake bodies; "GET": the paths below, round robin
    paths: list[str]
    headers: dict[str, str]
    concurrency: int
    warmup: float
    duration: float
    max_requests: int
    expect_status: int
    seed: int = 1
    key_prefix: str = "bench"  # makes every Idempotency-Key of a run distinct
    templates: int = 2048
    bodies: str = "orders"  # POST bodies: "orders" (payloads.order_body) or "buyers"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadSpec:
        return cls(**data)


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    errors: int = 0


class _Requests:
    """Hands out request numbers; the same numbering gives the same bodies in every run."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.next = 0
        self.templates: list[bytes] = []
        self.body = buyer_body if spec.bodies == "buyers" else order_body
        if spec.method == "POST":
            make = buyer_templates if spec.bodies == "buyers" else order_templates
            self.templates = make(spec.seed, spec.templates)

    def take(self) -> tuple[str, bytes | None, dict[str, str]]:
        number, self.next = self.next, self.next + 1
        path = self.spec.paths[number % len(self.spec.paths)]
        if self.spec.method != "POST":
            return path, None, {}
        key = f"{self.spec.key_prefix}-{number}"
        return path, self.body(self.templates, number), {"Idempotency-Key": key}


async def _worker(
    session: aiohttp.ClientSession,
    spec: LoadSpec,
    requests: _Requests,
    tally: _Tally,
    deadline: float,
    budget: list[int],
) -> None:
    while budget[0] > 0 and time.perf_counter() < deadline:
        budget[0] -= 1
        path, body, headers = requests.take()
        started = time.perf_counter()
        try:
            async with session.request(
                spec.method, spec.base_url + path, data=body, headers=headers
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as error:
            tally.statuses[type(error).__name__] += 1
            tally.errors += 1
            continue
        tally.latencies.append(time.perf_counter() - started)
        tally.statuses[str(status)] += 1
        if status != spec.expect_status:
            tally.errors += 1


async def _phase(
    session: aiohttp.ClientSession, spec: LoadSpec, requests: _Requests, seconds: float
) -> tuple[_Tally, float]:
    tally = _Tally()
    budget = [spec.max_requests]
    started = time.perf_counter()
    deadline = started + seconds
    workers = [
        _worker(session, spec, requests, tally, deadline, budget) for _ in range(spec.concurrency)
    ]
    await asyncio.gather(*workers)
    return tally, time.perf_counter() - started


async def run(spec: LoadSpec) -> dict[str, Any]:
    requests = _Requests(spec)
    connector = aiohttp.TCPConnector(limit=spec.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    headers = {"Content-Type": "application/json", **spec.headers}
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, headers=headers
    ) as session:
        warm = _Tally()
        if spec.warmup > 0:
            warm, _ = await _phase(session, spec, requests, spec.warmup)
        started_at = time.time()  # wall clock: the pipeline scenario times the orders' way
        tally, elapsed = await _phase(session, spec, requests, spec.duration)
    answered = len(tally.latencies)
    return {
        "spec": {k: v for k, v in asdict(spec).items() if k not in ("headers", "paths")},
        "requests": answered,
        "warmup_requests": len(warm.latencies),
        "started_at": started_at,
        "elapsed_s": elapsed,
        "rps": answered / elapsed if elapsed > 0 else 0.0,
        "errors": tally.errors,
        "statuses": dict(tally.statuses),
        "latency": summarize(tally.latencies).to_json(),
    }


def main(argv: list[str]) -> None:
    spec = LoadSpec.from_json(json.loads(Path(argv[1]).read_text()))
    result = run_with_fast_loop(run(spec))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv)
