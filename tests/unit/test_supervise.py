"""A background loop that fails is started again instead of being lost."""

from __future__ import annotations

import asyncio

from orderbridge.runtime import supervise


async def test_a_failing_loop_is_restarted_until_stopped() -> None:
    stop = asyncio.Event()
    runs = 0

    async def flaky(_stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError("database went away")
        stop.set()

    await asyncio.wait_for(supervise("test loop", flaky, stop, max_delay=0.01), 5)
    assert runs == 3


async def test_a_loop_that_returns_is_not_restarted() -> None:
    stop = asyncio.Event()
    runs = 0

    async def once(_stop: asyncio.Event) -> None:
        nonlocal runs
        runs += 1

    await asyncio.wait_for(supervise("test loop", once, stop), 5)
    assert runs == 1
