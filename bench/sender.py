"""The bare sender loop the dispatcher is compared with: ``python -m bench.sender SPEC.json``
prints one JSON result on stdout.

The dispatcher's HTTP work and nothing else: the same client (``open_session`` of
orderbridge.outbound.guard, with the dispatcher's timeouts and connection limit), the same
Standard Webhooks signing (one ``Signer`` reused, as the dispatcher does per endpoint), the
same bodies and ``webhook-id`` values (rendered from the run's stored events by the
harness), the same headers, the answer read up to the same limit. No database, no claims, no
results written. ``concurrency`` workers share the session and a request counter; the run
ends after ``count`` requests (a warm-up of ``warmup`` requests is not timed).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.load import run_with_fast_loop
from bench.stats import summarize
from orderbridge.outbound.guard import OutboundPolicy, open_session
from orderbridge.outbound.signing import Signer
from orderbridge.runtime import settle_heap
from orderbridge.webhooks.dispatcher import USER_AGENT, DispatcherOptions


@dataclass(frozen=True)
class SenderSpec:
    url: str
    secret: str
    messages: list[tuple[str, str]]  # (webhook-id, JSON body), sent round robin
    count: int
    concurrency: int
    warmup: int = 500
    loop: str = "uvloop"  # the dispatcher's (orderbridge worker runs on uvloop); or "asyncio"


async def _phase(
    session: aiohttp.ClientSession, spec: SenderSpec, signer: Signer, count: int
) -> dict[str, Any]:
    options = DispatcherOptions()
    bodies = [(msg_id, body.encode()) for msg_id, body in spec.messages]
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    remaining = [count]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            msg_id, payload = bodies[remaining[0] % len(bodies)]
            started = time.perf_counter()
            headers = signer.headers(msg_id, int(time.time()), payload)
            headers["content-type"] = "application/json"
            headers["user-agent"] = USER_AGENT
            try:
                async with session.post(
                    spec.url, data=payload, headers=headers, allow_redirects=False
                ) as response:
                    await response.content.read(options.response_limit)
                    statuses[str(response.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as error:
                statuses[type(error).__name__] += 1
                continue
            latencies.append(time.perf_counter() - started)

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(spec.concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "requests": count,
        "cpu_ms_per_request": (time.process_time() - cpu) * 1000 / count,
        "elapsed_s": elapsed,
        "rps": count / elapsed if elapsed > 0 else 0.0,
        "errors": sum(n for status, n in statuses.items() if status != "200"),
        "statuses": dict(statuses),
        "latency": summarize(latencies).to_json(),
    }


async def run(spec: SenderSpec) -> dict[str, Any]:
    options = DispatcherOptions(max_in_flight=spec.concurrency)
    timeout = aiohttp.ClientTimeout(
        total=options.total_timeout, sock_connect=options.connect_timeout
    )
    signer = Signer([spec.secret])
    async with open_session(
        OutboundPolicy(allow_private=True), timeout, limit=options.max_in_flight, limit_per_host=0
    ) as session:
        if spec.warmup:
            await _phase(session, spec, signer, spec.warmup)
        result = await _phase(session, spec, signer, spec.count)
    result["spec"] = {k: v for k, v in asdict(spec).items() if k not in ("secret", "messages")}
    return result


def main(argv: list[str]) -> None:
    data = json.loads(Path(argv[1]).read_text())
    spec = SenderSpec(**{**data, "messages": [tuple(m) for m in data["messages"]]})
    # The garbage collector as the worker process sets it when its loops start
    # (runtime.settle_heap): the same process settings on both sides.
    settle_heap()
    work = run(spec)
    result = run_with_fast_loop(work) if spec.loop == "uvloop" else asyncio.run(work)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main(sys.argv)
