"""Intake idempotency under concurrent duplicates (contract §5): however many submissions
of one order race with one Idempotency-Key, through the API, in parallel transactions or
from separate processes, there is exactly one order, one ``order.received`` event and one
``order.process`` job, and every caller gets that order's id."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from orderbridge.bootstrap import Container
from orderbridge.demo import sample_order
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.settings import Settings
from tests.conftest import Api, StoreKeys
from tests.support.concurrency import (
    count_events,
    count_jobs,
    count_orders,
    kill,
    postgres_only,
    result_of,
    spawn,
    start_together,
    wait_until,
)
from tests.support.writers import receive_duplicate

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Room for every racing transaction to hold its own connection at once.
    return settings.model_copy(update={"db_pool_size": 12})


async def assert_one_order_stored(container: Container, store_id: str) -> None:
    assert await count_orders(container, store_id) == 1
    assert await count_events(container, "order.received") == 1
    assert await count_jobs(container) == 1
    assert await count_jobs(container, "order.process") == 1


async def test_concurrent_duplicate_submissions_store_one_order_and_answer_its_id(
    api: Api, order_payload: dict[str, Any]
) -> None:
    responses = await asyncio.gather(*(api.submit(order_payload, key="dup") for _ in range(20)))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: 19}, [r.text for r in responses if r.status_code >= 300]
    [stored] = [r.json() for r in responses if r.status_code == 201]
    replays = [r for r in responses if r.status_code == 200]
    assert all(r.json() == stored for r in replays)
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in replays)
    await assert_one_order_stored(api.container, api.keys.store_id)

    order_payload["customer_note"] = "another order under the same key"
    reused = await api.submit(order_payload, key="dup")
    assert reused.status_code == 409
    assert reused.json()["code"] == "idempotency_key_reused"
    await assert_one_order_stored(api.container, api.keys.store_id)


async def test_racing_submissions_of_two_bodies_under_one_key_store_one_and_refuse_the_other(
    api: Api, order_payload: dict[str, Any]
) -> None:
    other = {**order_payload, "customer_note": "a different order"}
    bodies = [order_payload] * 12 + [other] * 4
    random.Random(7).shuffle(bodies)
    responses = await asyncio.gather(*(api.submit(body, key="shared") for body in bodies))

    stored = next(r.json() for r in responses if r.status_code == 201)
    winner = order_payload if stored.get("customer_note") is None else other
    for body, response in zip(bodies, responses, strict=True):
        if body is winner:
            assert response.status_code in (200, 201), response.text
            assert response.json()["id"] == stored["id"]
        else:
            assert response.status_code == 409, response.text
            assert response.json()["code"] == "idempotency_key_reused"
    assert sum(r.status_code == 201 for r in responses) == 1
    await assert_one_order_stored(api.container, api.keys.store_id)


async def test_parallel_receive_transactions_with_one_key_store_one_order(
    container: Container, store: StoreKeys, order_payload: dict[str, Any]
) -> None:
    results = await asyncio.gather(
        *(receive_duplicate(container, store.store_id, "k", order_payload) for _ in range(10))
    )

    assert len({order_id for order_id, _ in results}) == 1
    assert sum(changed for _, changed in results) == 1
    await assert_one_order_stored(container, store.store_id)


async def _lock_waiters(container: Container) -> int:
    async with container.db.reader() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)


class FirstAttemptFails(Exception):
    pass


async def _race_with_first_holder_waiting(
    container: Container,
    store_id: str,
    payload: dict[str, Any],
    *,
    racers: int,
    first_rolls_back: bool,
) -> list[tuple[str, bool] | BaseException]:
    """Every racer receives the order under one key in its own transaction. The first to
    insert keeps its transaction open until all the others are blocked on its uncommitted
    row, then commits (or rolls back): the duplicates are decided by PostgreSQL's wait on
    the unique index, deterministically, not by luck of timing."""
    first_holder_done = asyncio.Event()

    async def others_blocked() -> bool:
        return await _lock_waiters(container) >= racers - 1

    async def racer() -> tuple[str, bool]:
        async with container.db.transaction() as session:
            outcome = await container.orders.receive(
                session,
                store_id,
                "raced-key",
                CheckoutOrder.model_validate(payload),
            )
            if outcome.changed and not first_holder_done.is_set():
                try:
                    await wait_until(
                        others_blocked,
                        within=20,
                        what=f"{racers - 1} transactions blocked on the first one's insert",
                    )
                finally:
                    first_holder_done.set()
                if first_rolls_back:
                    raise FirstAttemptFails
        return f"{store_id}-{outcome.order.id}", outcome.changed

    return await asyncio.gather(*(racer() for _ in range(racers)), return_exceptions=True)


@pytest.mark.parametrize("first_rolls_back", [False, True], ids=["commits", "rolls-back"])
@postgres_only
async def test_duplicates_blocked_on_an_uncommitted_first_insert_store_one_order(
    container: Container,
    store: StoreKeys,
    order_payload: dict[str, Any],
    first_rolls_back: bool,
) -> None:
    racers = 8
    results = await _race_with_first_holder_waiting(
        container, store.store_id, order_payload, racers=racers, first_rolls_back=first_rolls_back
    )

    failed = [r for r in results if isinstance(r, BaseException)]
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert all(isinstance(f, FirstAttemptFails) for f in failed), failed
    assert len(failed) == (1 if first_rolls_back else 0)
    assert len({order_id for order_id, _ in answered}) == 1
    # After a rollback one of the waiting duplicates becomes the one that stores the order.
    assert sum(changed for _, changed in answered) == 1
    await assert_one_order_stored(container, store.store_id)


@pytest.mark.slow
async def test_duplicates_from_separate_processes_store_one_order(
    container: Container, store: StoreKeys, database_url: str, tmp_path: Path
) -> None:
    seed = "same-order"
    payload = sample_order(random.Random(seed))
    children = [
        await spawn(
            "tests.support.writers",
            database_url,
            store.store_id,
            "duplicates",
            seed,
            "4",
            "proc-key",
            settings=container.settings,
            stdin=True,
            log_dir=tmp_path,
        )
        for _ in range(2)
    ]
    try:
        await start_together(children, within=30)
        here = await asyncio.gather(
            *(receive_duplicate(container, store.store_id, "proc-key", payload) for _ in range(4))
        )
        answers = [await result_of(child, within=30) for child in children]
    finally:
        for child in children:
            kill(child)

    results = [tuple(r) for answer in answers for r in answer] + here
    assert len(results) == 12
    assert len({order_id for order_id, _ in results}) == 1
    assert sum(changed for _, changed in results) == 1
    await assert_one_order_stored(container, store.store_id)
