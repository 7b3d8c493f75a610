"""A dispatcher killed with SIGKILL in the middle of a delivery loses nothing: once its
lease is over the delivery goes out again, with the same ``webhook-id`` (at least once).
The lease ends by moving the frozen clock, not by waiting for it."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from orderbridge.bootstrap import Container
from orderbridge.clock import FrozenClock
from orderbridge.settings import Settings
from orderbridge.webhooks import claims
from tests.conftest import Api
from tests.support.concurrency import postgres_only
from tests.webhooks.helpers import (
    attempts,
    create_endpoint,
    dispatcher,
    only_delivery,
    receive_orders,
    running,
    verify,
)
from tests.webhooks.receiver import HOLD, receiver

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


async def release_expired(api: Api) -> int:
    async with api.container.db.transaction() as session:
        return await claims.release_expired(session, now=api.container.clock.now())


async def test_a_dispatcher_killed_mid_delivery_loses_nothing(
    api: Api, clock: FrozenClock, settings: Settings
) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda n: (200, {}, HOLD if n == 1 else 0.0)
        endpoint = await create_endpoint(api, hooks.url, events=["order.received"])
        await receive_orders(api.container, api.keys.store_id, 1)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.webhooks.dispatcher_process",
            settings.database_url,
            settings.secret_keys,
            cwd=ROOT,
        )
        try:
            await hooks.wait_for(1, within=30)
            in_flight = await only_delivery(api.container, endpoint["id"])
            assert in_flight.status == "sending"
            process.send_signal(signal.SIGKILL)
            assert await process.wait() == -signal.SIGKILL
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

        # The dead dispatcher's lease still runs: nobody else sends the delivery.
        sender = dispatcher(api.container)
        assert await release_expired(api) == 0
        assert await sender.run_until_idle() == 0
        assert in_flight.lease_expires_at is not None
        clock.advance(seconds=(in_flight.lease_expires_at - clock.now()).total_seconds() + 1)
        assert await release_expired(api) == 1
        assert await sender.run_until_idle() == 1

    killed, again = hooks.requests
    assert killed.headers["webhook-id"] == again.headers["webhook-id"]
    assert killed.body == again.body
    verify(endpoint["secret"], killed)
    verify(endpoint["secret"], again)
    delivery = await only_delivery(api.container, endpoint["id"])
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)
    assert [a.status_code for a in await attempts(api.container, delivery.id)] == [200]


async def test_a_dispatcher_whose_lease_was_taken_over_writes_nothing(
    api: Api, clock: FrozenClock
) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda n: (200 if n == 2 else 500, {}, HOLD if n == 1 else 0.0)
        endpoint = await create_endpoint(api, hooks.url, max_concurrency=1)
        await receive_orders(api.container, api.keys.store_id, 1)
        stalled = dispatcher(api.container, total_timeout=30)
        async with running(stalled):
            await hooks.wait_for(1)
            clock.advance(seconds=stalled.options.lease.total_seconds() + 1)
            assert await release_expired(api) == 1
            assert await dispatcher(api.container).run_until_idle() == 1
            hooks.release.set()  # the stalled request now gets its 500, too late
            await asyncio.sleep(0.2)

    assert len(set(hooks.ids)) == 1
    delivery = await only_delivery(api.container, endpoint["id"])
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        "succeeded",
        1,
        200,
    )
    assert [a.status_code for a in await attempts(api.container, delivery.id)] == [200]


@postgres_only
async def test_a_postgresql_claim_leaves_no_connection_in_autocommit(
    container: Container,
) -> None:
    """The claim runs as one statement on a connection in autocommit mode; the pool must
    get it back transactional, or a later transaction on it would commit statement by
    statement."""
    db = container.db
    async with claims.postgres_autocommit(db) as driver:
        assert driver.autocommit
    for _ in range(3):
        async with db.transaction() as session:
            assert not (await claims.driver_connection(session)).autocommit
