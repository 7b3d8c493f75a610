"""No event can be committed without its deliveries: they are written by the event's own
transaction, so a rollback leaves neither, and a commit leaves both even when no
dispatcher runs."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import func, select

from orderbridge.db.models import Event, Order, WebhookDelivery
from orderbridge.demo import sample_order
from orderbridge.events.recorder import EventRecorder, NewEvent
from orderbridge.orders.lifecycle import Actor
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.webhooks.repository import create_deliveries
from tests.conftest import Api
from tests.webhooks.helpers import create_endpoint, deliveries

pytestmark = pytest.mark.timeout(60)


class Interrupted(Exception):
    pass


async def counts(api: Api) -> tuple[int, int, int]:
    async with api.container.db.reader() as session:
        found = []
        for model in (Order, Event, WebhookDelivery):
            found.append(int(await session.scalar(select(func.count()).select_from(model)) or 0))
        return found[0], found[1], found[2]


async def test_a_rolled_back_transaction_leaves_neither_event_nor_delivery(api: Api) -> None:
    await create_endpoint(api, "http://127.0.0.1:9/hooks")
    order = CheckoutOrder.model_validate(sample_order(random.Random(1)))
    with pytest.raises(Interrupted):
        async with api.container.db.transaction() as session:
            await api.container.orders.receive(session, api.keys.store_id, "k", order)
            assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 1
            raise Interrupted
    assert await counts(api) == (0, 0, 0)


async def test_a_committed_event_has_its_deliveries_with_no_dispatcher_running(
    api: Api, order_payload: dict[str, Any]
) -> None:
    everything = await create_endpoint(api, "http://127.0.0.1:9/all")
    ready_only = await create_endpoint(api, "http://127.0.0.1:9/ready", events=["order.ready"])
    switched_off = await create_endpoint(api, "http://127.0.0.1:9/off", enabled=False)
    await api.ready_order(order_payload)  # through the API, as a checkout would

    events = (await api.events(after_event_id=""))["events"]
    assert [e["event_name"] for e in events] == ["order.received", "order.ready"]
    rows = await deliveries(api.container, everything["id"])
    assert [(d.event_name, d.status, d.attempts) for d in rows] == [
        ("order.received", "pending", 0),
        ("order.ready", "pending", 0),
    ]
    assert [d.event_name for d in await deliveries(api.container, ready_only["id"])] == [
        "order.ready"
    ]
    assert await deliveries(api.container, switched_off["id"]) == []


async def test_deliveries_are_counted_for_the_matching_enabled_endpoints_only(api: Api) -> None:
    await create_endpoint(api, "http://127.0.0.1:9/a")
    await create_endpoint(api, "http://127.0.0.1:9/b", events=["order.cancelled"])
    await create_endpoint(api, "http://127.0.0.1:9/c", enabled=False)
    event = NewEvent(
        store_id=api.keys.store_id,
        name="order.received",
        at=api.container.clock.now(),
        actor=Actor.system("test"),
    )
    async with api.container.db.transaction() as session:
        row_id = await EventRecorder().record(session, event)  # the event without listeners
        assert await create_deliveries(session, event, row_id) == 1
