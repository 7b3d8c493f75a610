"""Writers for the concurrency tests, usable in the test process or as a separate OS process:

    python -m tests.support.writers DATABASE_URL STORE_ID feed SEED TASKS TRANSACTIONS
    python -m tests.support.writers DATABASE_URL STORE_ID duplicates SEED TASKS KEY

The process builds its own container (its own connection pool), prints ``ready``, waits
for a line on stdin so that every writer starts together, does its work, prints one JSON
line with what it did, and exits.

``feed``: TASKS concurrent tasks each run TRANSACTIONS transactions that receive one or two
orders or cancel one received earlier, and then *sleep a random few milliseconds before
committing*: transactions commit in another order than they got their ids. Prints the
events it committed per name.

``duplicates``: TASKS concurrent transactions each receive the same order (sample_order of
SEED) under the same KEY. Prints ``[order id, changed]`` per task.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text

from orderbridge.bootstrap import Container, build
from orderbridge.clock import FrozenClock
from orderbridge.demo import sample_order
from orderbridge.ids import order_public_id
from orderbridge.orders.lifecycle import Actor, ActorKind, CancellationReason
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.settings import Settings, WorkerMode

MERCHANT = Actor(ActorKind.MERCHANT, "concurrency-test")


@dataclass
class WriterLog:
    """What a writer committed: events per name, and (PostgreSQL) the txid of each
    transaction in the order its commit returned."""

    events: Counter[str] = field(default_factory=Counter)
    commit_txids: list[int] = field(default_factory=list)


async def write_transactions(
    container: Container,
    store_id: str,
    rng: random.Random,
    transactions: int,
    key_prefix: str,
    log: WriterLog,
    *,
    max_hold: float = 0.015,
) -> None:
    """Run ``transactions`` transactions one after the other, each holding its writes
    uncommitted for a random 0..``max_hold`` seconds."""
    received: list[str] = []
    for number in range(transactions):
        new: list[str] = []
        events: Counter[str] = Counter()
        async with container.db.transaction() as session:
            draw = rng.random()
            if received and draw < 0.25:
                public_id = received.pop(rng.randrange(len(received)))
                await container.orders.cancel(
                    session,
                    store_id,
                    public_id,
                    reason=CancellationReason.MERCHANT_REQUEST,
                    note=None,
                    actor=MERCHANT,
                )
                events["order.cancelled"] += 1
            else:
                for extra in range(1 if draw < 0.8 else 2):
                    order = CheckoutOrder.model_validate(sample_order(rng))
                    key = f"{key_prefix}-{number}-{extra}"
                    outcome = await container.orders.receive(session, store_id, key, order)
                    assert outcome.changed
                    new.append(order_public_id(store_id, outcome.order.id))
                    events["order.received"] += 1
            txid = None
            if container.db.is_postgres:
                txid = await session.scalar(text("SELECT pg_current_xact_id()::text::bigint"))
            await asyncio.sleep(rng.uniform(0, max_hold))
        received.extend(new)
        log.events.update(events)
        if txid is not None:
            log.commit_txids.append(int(txid))


async def receive_duplicate(
    container: Container, store_id: str, key: str, payload: dict[str, Any]
) -> tuple[str, bool]:
    async with container.db.transaction() as session:
        outcome = await container.orders.receive(
            session, store_id, key, CheckoutOrder.model_validate(payload)
        )
    return order_public_id(store_id, outcome.order.id), outcome.changed


async def _main(argv: list[str]) -> None:
    url, store_id, mode, seed, tasks, last = argv
    container = build(
        Settings(database_url=url, worker_mode=WorkerMode.OFF, db_pool_size=int(tasks)),
        clock=FrozenClock(datetime.fromisoformat("2026-01-01T00:00:00+00:00")),
    )
    try:
        async with container.db.reader() as session:  # connect before the start signal
            await session.execute(text("SELECT 1"))
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        if mode == "feed":
            log = WriterLog()
            await asyncio.gather(
                *(
                    write_transactions(
                        container,
                        store_id,
                        random.Random(f"{seed}-{task}"),
                        int(last),
                        f"proc-{seed}-{task}",
                        log,
                    )
                    for task in range(int(tasks))
                )
            )
            print(json.dumps(dict(log.events)), flush=True)
        elif mode == "duplicates":
            payload = sample_order(random.Random(seed))
            results = await asyncio.gather(
                *(receive_duplicate(container, store_id, last, payload) for _ in range(int(tasks)))
            )
            print(json.dumps(results), flush=True)
        else:
            raise SystemExit(f"unknown mode {mode!r}")
    finally:
        await container.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
