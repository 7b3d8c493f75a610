"""The gap-free event feed under concurrent writers (contract §4): a consumer that always
follows ``links.next`` receives every event exactly once, in a stable order, however
transactions commit. The control tests show the trap this avoids: a poller reading
``WHERE id > :cursor`` loses an event whose transaction commits after a younger one."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from orderbridge.bootstrap import Container
from orderbridge.db.models import Event
from orderbridge.demo import sample_order
from orderbridge.jobs.worker import WorkerOptions
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.settings import Settings
from tests.conftest import Api
from tests.support.concurrency import (
    FeedFollower,
    kill,
    postgres_only,
    result_of,
    spawn,
    start_together,
    stored_feed,
)
from tests.support.writers import WriterLog, write_transactions

pytestmark = pytest.mark.timeout(60)

# 12 concurrent writers: 8 tasks in the test process (the app's pool) and 4 in another
# process with a pool of its own.
WRITER_TASKS = 8
TRANSACTIONS_PER_TASK = 5
WRITER_PROCESSES = 1
TASKS_PER_PROCESS = 4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Every writer task, the worker and the poller hold a connection at once.
    return settings.model_copy(update={"db_pool_size": 16})


def has_inversion(txids: list[int]) -> bool:
    return any(earlier > later for earlier, later in itertools.pairwise(txids))


@pytest.mark.slow
async def test_poller_following_next_sees_every_event_once_with_concurrent_writers(
    api: Api, database_url: str, tmp_path: Path
) -> None:
    container, store_id = api.container, api.keys.store_id
    children = [
        await spawn(
            "tests.support.writers",
            database_url,
            store_id,
            "feed",
            f"proc{n}",
            str(TASKS_PER_PROCESS),
            str(TRANSACTIONS_PER_TASK),
            settings=container.settings,
            stdin=True,
            log_dir=tmp_path,
        )
        for n in range(WRITER_PROCESSES)
    ]
    follower = FeedFollower(api.client, store_id, api.keys.merchant, limit=10)
    stop_polling, stop_worker = asyncio.Event(), asyncio.Event()
    log = WriterLog()
    poller = asyncio.create_task(follower.follow(stop_polling))
    # The worker commits order.ready events in between, in short transactions of its own.
    worker = container.worker(WorkerOptions(concurrency=2, poll_interval=0.005))
    working = asyncio.create_task(worker.run(stop_worker))
    try:
        await start_together(children, within=30)
        await asyncio.gather(
            *(
                write_transactions(
                    container,
                    store_id,
                    random.Random(task),
                    TRANSACTIONS_PER_TASK,
                    f"task-{task}",
                    log,
                )
                for task in range(WRITER_TASKS)
            )
        )
        for child in children:
            log.events.update(await result_of(child, within=30))
        stop_worker.set()
        await working
        await container.worker().run_until_idle()
        stop_polling.set()
        await poller
    finally:
        stop_worker.set()
        stop_polling.set()
        await asyncio.gather(working, poller, return_exceptions=True)
        for child in children:
            kill(child)

    stored = await stored_feed(container, store_id)
    await follower.drain(stored[-1][0], within=30)

    seen = follower.seen_ids
    missing = {event_id for event_id, _ in stored} - set(seen)
    assert not missing, f"{len(missing)} of {len(stored)} committed events never reached the poller"
    assert len(seen) == len(set(seen)), "an event was delivered twice"
    assert seen == sorted(seen), "events came out of feed order"
    assert [(e["event_id"], e["event_name"]) for e in follower.seen] == stored
    names = Counter(name for _, name in stored)
    assert names["order.received"] == log.events["order.received"]
    assert names["order.cancelled"] == log.events["order.cancelled"]
    assert names["order.ready"] > 0 and follower.pages > 5
    if container.db.is_postgres:
        # Else the writers happened to commit in txid order and this proved little.
        assert has_inversion(log.commit_txids)


async def _receive(container: Container, store_id: str, key: str, seed: int) -> None:
    async with container.db.transaction() as session:
        order = CheckoutOrder.model_validate(sample_order(random.Random(seed)))
        await container.orders.receive(session, store_id, key, order)


async def _naive_poll(container: Container, store_id: str, cursor: int) -> list[int]:
    """The trap: read by sequence id above the last id seen."""
    async with container.db.reader() as session:
        rows = await session.scalars(
            select(Event.id).where(Event.store_id == store_id, Event.id > cursor).order_by(Event.id)
        )
        return list(rows)


async def _all_ids(container: Container, store_id: str) -> list[int]:
    return await _naive_poll(container, store_id, 0)


@postgres_only
async def test_naive_id_cursor_poller_misses_an_event_committed_after_a_younger_one(
    api: Api,
) -> None:
    container, store_id = api.container, api.keys.store_id
    await _receive(container, store_id, "before", 1)
    cursor = max(await _naive_poll(container, store_id, 0))

    async with container.db.transaction() as older:
        order = CheckoutOrder.model_validate(sample_order(random.Random(2)))
        await container.orders.receive(older, store_id, "older", order)
        await _receive(container, store_id, "younger", 3)  # commits while `older` is open
        seen_early = await _naive_poll(container, store_id, cursor)
        cursor = max(seen_early)
    seen_late = await _naive_poll(container, store_id, cursor)

    everything = await _all_ids(container, store_id)
    assert len(everything) == 3
    missed = set(everything[1:]) - set(seen_early) - set(seen_late)
    # The older transaction's event has the smaller id but became visible last: the naive
    # poller had already moved its cursor past it.
    assert missed == {everything[1]}


@postgres_only
async def test_feed_holds_a_younger_commit_back_until_the_older_transaction_ends(
    api: Api,
) -> None:
    container, store_id = api.container, api.keys.store_id
    await _receive(container, store_id, "before", 1)
    follower = FeedFollower(api.client, store_id, api.keys.merchant)
    assert [e["event_name"] for e in await follower.poll()] == ["order.received"]

    async with container.db.transaction() as older:
        order = CheckoutOrder.model_validate(sample_order(random.Random(2)))
        older_order = await container.orders.receive(older, store_id, "older", order)
        await _receive(container, store_id, "younger", 3)
        # The younger event is committed but the older transaction could still add events
        # before it in feed order: the feed must not hand it out yet.
        assert await follower.poll() == []
        assert await follower.poll() == []

    stored = await stored_feed(container, store_id)
    await follower.drain(stored[-1][0], within=30)
    assert [(e["event_id"], e["event_name"]) for e in follower.seen] == stored
    older_id = f"{store_id}-{older_order.order.id}"
    assert [e["order_id"] for e in follower.seen].index(older_id) == 1
