"""Helpers for the concurrency and crash tests: what storage holds, a poller that follows the
event feed's ``links.next``, waiting on a condition with a deadline, and child processes
that run parts of orderbridge (``python -m tests.support.<module>``) from the repository."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import ColumnElement, func, select

from orderbridge.bootstrap import Container
from orderbridge.db.models import Event, Job, Order
from orderbridge.ids import FeedPosition
from orderbridge.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


async def count(container: Container, model: type[Any], *where: ColumnElement[bool]) -> int:
    async with container.db.reader() as session:
        total = await session.scalar(select(func.count()).select_from(model).where(*where))
        return int(total or 0)


async def count_orders(container: Container, store_id: str) -> int:
    return await count(container, Order, Order.store_id == store_id)


async def count_events(container: Container, name: str) -> int:
    return await count(container, Event, Event.name == name)


async def count_jobs(container: Container, kind: str | None = None) -> int:
    return await count(container, Job, *([Job.kind == kind] if kind else []))


async def stored_feed(container: Container, store_id: str) -> list[tuple[str, str]]:
    """(event id, name) of every stored event of the store, in feed order."""
    async with container.db.reader() as session:
        rows = await session.execute(
            select(Event.txid, Event.pos, Event.name)
            .where(Event.store_id == store_id)
            .order_by(Event.txid, Event.pos)
        )
        return [(FeedPosition(r.txid, r.pos).event_id(), r.name) for r in rows]


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, within: float, what: str, every: float = 0.01
) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds saying ``what``."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(every)


class FeedFollower:
    """A feed consumer as the contract describes one: start from ``after_event_id=`` and
    always follow ``links.next``, keeping every event it is given."""

    def __init__(
        self, client: httpx.AsyncClient, store_id: str, headers: dict[str, str], limit: int = 7
    ) -> None:
        self.client = client
        self.headers = headers
        self.next_url = f"/v2/events/{store_id}?after_event_id=&limit={limit}"
        self.seen: list[dict[str, Any]] = []
        self.pages = 0

    @property
    def seen_ids(self) -> list[str]:
        return [event["event_id"] for event in self.seen]

    async def poll(self) -> list[dict[str, Any]]:
        """Fetch the next page; return its events."""
        response = await self.client.get(self.next_url, headers=self.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        self.pages += 1
        self.seen.extend(page["events"])
        self.next_url = page["links"]["next"]
        events: list[dict[str, Any]] = page["events"]
        return events

    async def follow(self, stop: asyncio.Event) -> None:
        """Keep polling until ``stop`` is set, pausing briefly on empty pages."""
        while not stop.is_set():
            if not await self.poll():
                await asyncio.sleep(0.003)

    async def drain(self, last_event_id: str, *, within: float) -> None:
        """Poll until the feed has handed out ``last_event_id`` (the last stored event, in
        feed order), then check that it has nothing more. On PostgreSQL the last events can
        wait for any older transaction in the cluster (another test run's) to end, so this
        waits, up to ``within`` seconds."""

        async def caught_up() -> bool:
            await self.poll()
            return last_event_id in self.seen_ids[-1:]

        await wait_until(caught_up, within=within, what=f"event {last_event_id} in the feed")
        assert await self.poll() == []


async def spawn(
    module: str,
    *args: str,
    settings: Settings,
    stdin: bool = False,
    log_dir: Path | None = None,
) -> asyncio.subprocess.Process:
    """Start ``python -m module args`` from the repository root, with the environment a
    deployment would give it (``ORDERBRIDGE_DATA_DIR`` of the test's settings). Its stdout
    is a pipe; its stderr goes to a file in ``log_dir`` (or is inherited), for post-mortems."""
    stderr = _log_file(log_dir, module)
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            cwd=REPO_ROOT,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO_ROOT),
                "ORDERBRIDGE_DATA_DIR": str(settings.data_dir),
            },
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    finally:
        if stderr is not None:
            stderr.close()


def _log_file(log_dir: Path | None, module: str) -> Any:
    if log_dir is None:
        return None
    return open(log_dir / f"{module}-{time.monotonic_ns()}.err", "wb")


async def read_line(process: asyncio.subprocess.Process, *, within: float) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), within)
    if not line:
        code = await asyncio.wait_for(process.wait(), within)
        raise AssertionError(f"child process exited with {code} before answering")
    return line.decode().strip()


async def start_together(children: list[asyncio.subprocess.Process], *, within: float) -> None:
    """Wait until every child printed ``ready``, then tell them all to go."""
    for child in children:
        assert await read_line(child, within=within) == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()


async def result_of(child: asyncio.subprocess.Process, *, within: float) -> Any:
    """The JSON line a child prints when done; it must then exit cleanly."""
    result = json.loads(await read_line(child, within=within))
    assert await asyncio.wait_for(child.wait(), within) == 0
    return result


def kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL a child we started, if it is still running."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()


def postgres_only(test: Callable[..., Any]) -> Callable[..., Any]:
    """Run a test on PostgreSQL only (it needs concurrent writers, which SQLite serialises)."""
    on_postgres = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
    marked: Callable[..., Any] = pytest.mark.postgres_only(on_postgres(test))
    return marked
