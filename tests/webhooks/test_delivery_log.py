"""The delivery log through the API: listing with filters, one delivery with its attempts,
resend, recover; what is stored of a response; deleting an endpoint; pruning attempts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from orderbridge.clock import FrozenClock, rfc3339
from orderbridge.db.models import WebhookAttempt, WebhookDelivery, WebhookSecret
from orderbridge.webhooks.policy import RetryPolicy
from tests.conftest import Api
from tests.webhooks.helpers import (
    attempts,
    call,
    create_endpoint,
    deliveries,
    dispatcher,
    only_delivery,
    receive_orders,
    running,
)
from tests.webhooks.receiver import HOLD, receiver

pytestmark = pytest.mark.timeout(60)

ONE_TRY = RetryPolicy(schedule=())  # given up after the first failure


async def log(api: Api, **params: Any) -> dict[str, Any]:
    page: dict[str, Any] = await call(api, "GET", "/deliveries", params=params)
    return page


async def test_the_log_lists_deliveries_per_endpoint_and_order_filtered_by_status(
    api: Api,
) -> None:
    async with receiver() as good, receiver() as bad:
        bad.answer = lambda _n: (500, {}, 0.0)
        ok = await create_endpoint(api, good.url)
        failing = await create_endpoint(api, bad.url)
        await receive_orders(api.container, api.keys.store_id, 2)
        assert await dispatcher(api.container).run_until_idle() == 4

    page = await log(api, endpoint_id=ok["id"])
    assert [d["status"] for d in page["deliveries"]] == ["succeeded", "succeeded"]
    ids = [d["id"] for d in page["deliveries"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert [d["status"] for d in (await log(api, endpoint_id=failing["id"]))["deliveries"]] == [
        "pending",
        "pending",
    ]
    assert (await log(api, endpoint_id=failing["id"], status="succeeded"))["deliveries"] == []
    both = await log(api, status=["succeeded", "failed"])
    assert {d["endpoint_id"] for d in both["deliveries"]} == {ok["id"]}

    order_id = page["deliveries"][0]["order_id"]
    of_order = (await log(api, order_id=order_id))["deliveries"]
    assert {(d["endpoint_id"], d["status"]) for d in of_order} == {
        (ok["id"], "succeeded"),
        (failing["id"], "pending"),
    }
    pending = (await log(api, order_id=order_id, status="pending"))["deliveries"]
    assert [d["endpoint_id"] for d in pending] == [failing["id"]]
    assert pending[0]["next_attempt_at"] is not None

    first = await log(api, limit=3)
    assert len(first["deliveries"]) == 3
    rest = await log(api, limit=3, before=first["next_cursor"])
    assert len(rest["deliveries"]) == 1
    assert rest["next_cursor"] is None

    unknown = await api.client.get(
        f"/v2/webhooks/{api.keys.store_id}/deliveries",
        params={"status": "lost"},
        headers=api.keys.merchant,
    )
    assert unknown.status_code == 400
    assert unknown.headers["content-type"].startswith("application/problem+json")


async def test_one_delivery_shows_every_attempt_and_resend_sends_it_again(
    api: Api, clock: FrozenClock
) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda n: (500 if n == 1 else 200, {}, 0.0)
        endpoint = await create_endpoint(api, hooks.url)
        await receive_orders(api.container, api.keys.store_id, 1)
        sender = dispatcher(api.container)
        await sender.run_until_idle()
        clock.advance(seconds=10)
        await sender.run_until_idle()

        delivery = await only_delivery(api.container, endpoint["id"])
        shown = await call(api, "GET", f"/deliveries/{delivery.id}")
        resent = await call(api, "POST", f"/deliveries/{delivery.id}/resend")
        assert (resent["status"], resent["completed_at"]) == ("pending", None)
        assert await sender.run_until_idle() == 1

    [event] = (await api.events(after_event_id=""))["events"]
    assert shown["event_id"] == event["event_id"]
    assert (shown["status"], shown["attempts"], shown["last_status_code"]) == ("succeeded", 2, 200)
    assert shown["next_attempt_at"] is None
    assert [
        (a["attempt"], a["status_code"], a["response_body"], a["error"])
        for a in shown["attempt_log"]
    ] == [(1, 500, "no", "HTTP 500"), (2, 200, "ok", None)]
    assert hooks.ids == [event["event_id"]] * 3
    again = await call(api, "GET", f"/deliveries/{delivery.id}")
    assert (again["status"], again["attempts"]) == ("succeeded", 3)
    missing = await api.client.get(
        f"/v2/webhooks/{api.keys.store_id}/deliveries/999999", headers=api.keys.merchant
    )
    assert missing.status_code == 404


async def test_recover_requeues_failures_and_sends_events_missed_while_disabled(
    api: Api, clock: FrozenClock
) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda n: (500 if n == 1 else 200, {}, 0.0)
        endpoint = await create_endpoint(api, hooks.url, events=["order.received"])
        path = f"/{endpoint['id']}"
        sender = dispatcher(api.container, retry=ONE_TRY)
        start = clock.now()
        await receive_orders(api.container, api.keys.store_id, 1, seed=1)
        await sender.run_until_idle()
        assert (await only_delivery(api.container, endpoint["id"])).status == "failed"

        await call(api, "PATCH", path, json={"enabled": False})
        clock.advance(hours=1)
        await receive_orders(api.container, api.keys.store_id, 1, seed=2)
        clock.advance(hours=1)
        late = clock.now()
        await receive_orders(api.container, api.keys.store_id, 1, seed=3)
        assert len(await deliveries(api.container, endpoint["id"])) == 1
        await call(api, "PATCH", path, json={"enabled": True})
        assert await sender.run_until_idle() == 0

        since_late = await call(api, "POST", f"{path}/recover", json={"since": rfc3339(late)})
        assert since_late == {"requeued": 0, "created": 1}
        since_start = await call(api, "POST", f"{path}/recover", json={"since": rfc3339(start)})
        assert since_start == {"requeued": 1, "created": 1}
        assert await sender.run_until_idle() == 3

    feed = [e["event_id"] for e in (await api.events(after_event_id=""))["events"]]
    assert sorted(hooks.ids[1:]) == sorted(feed)
    assert {d.status for d in await deliveries(api.container, endpoint["id"])} == {"succeeded"}


async def test_recover_since_a_time_with_an_offset_means_that_instant(
    api: Api, clock: FrozenClock
) -> None:
    endpoint = await create_endpoint(api, "http://127.0.0.1:9/hooks", enabled=False)
    await receive_orders(api.container, api.keys.store_id, 1)
    # One second after the event, written in another zone: nothing to recover.
    after = (clock.now() + timedelta(hours=2, seconds=1)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    result = await call(api, "POST", f"/{endpoint['id']}/recover", json={"since": after})
    assert result == {"requeued": 0, "created": 0}


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        (b"x" * 5000, "x" * 100),
        ([b"a" * 30, b"b" * 30, b"c" * 100], "a" * 30 + "b" * 30 + "c" * 40),
        ([b"short", b" and done"], "short and done"),
        (b"bin\x00ary\xff", "bin\ufffdary\ufffd"),
    ],
    ids=["long", "in-pieces", "small-pieces", "binary"],
)
async def test_a_response_body_is_stored_up_to_the_limit_as_text(
    api: Api, body: bytes | list[bytes], stored: str
) -> None:
    async with receiver() as hooks:
        hooks.body = lambda _n: body
        endpoint = await create_endpoint(api, hooks.url)
        await receive_orders(api.container, api.keys.store_id, 1)
        assert await dispatcher(api.container, response_limit=100).run_until_idle() == 1

    delivery = await only_delivery(api.container, endpoint["id"])
    assert delivery.status == "succeeded"
    [attempt] = await attempts(api.container, delivery.id)
    assert attempt.response_body == stored


async def count(api: Api, model: Any, endpoint_id: str) -> int:
    async with api.container.db.reader() as session:
        total = await session.scalar(
            select(func.count()).select_from(model).where(model.endpoint_id == endpoint_id)
        )
        return int(total or 0)


async def test_deleting_an_endpoint_removes_its_log_and_stops_its_deliveries(
    api: Api,
) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda n: (200, {}, HOLD if n == 2 else 0.0)
        endpoint = await create_endpoint(api, hooks.url)
        await receive_orders(api.container, api.keys.store_id, 1, seed=1)
        await dispatcher(api.container).run_until_idle()
        await receive_orders(api.container, api.keys.store_id, 1, seed=2)
        async with running(dispatcher(api.container)):
            await hooks.wait_for(2)  # the second delivery is in flight
            await call(api, "DELETE", f"/{endpoint['id']}")
            hooks.release.set()
            await receive_orders(api.container, api.keys.store_id, 1, seed=3)
        assert len(hooks.requests) == 2

    gone = await api.client.get(
        f"/v2/webhooks/{api.keys.store_id}/{endpoint['id']}", headers=api.keys.merchant
    )
    assert gone.status_code == 404
    assert (await log(api, endpoint_id=endpoint["id"]))["deliveries"] == []
    for model in (WebhookDelivery, WebhookAttempt, WebhookSecret):
        assert await count(api, model, endpoint["id"]) == 0


async def test_attempts_older_than_the_retention_are_pruned(api: Api, clock: FrozenClock) -> None:
    async with receiver() as hooks:
        endpoint = await create_endpoint(api, hooks.url)
        await receive_orders(api.container, api.keys.store_id, 1)
        sender = dispatcher(
            api.container, attempt_retention=timedelta(days=30), maintenance_interval=0
        )
        await sender.run_until_idle()
        delivery = await only_delivery(api.container, endpoint["id"])
        clock.advance(days=30, seconds=1)
        await call(api, "POST", f"/deliveries/{delivery.id}/resend")
        async with running(sender):
            await hooks.wait_for(2)

    [kept] = await attempts(api.container, delivery.id)
    assert (kept.attempt, kept.attempted_at) == (2, clock.now())
    assert (await only_delivery(api.container, endpoint["id"])).status == "succeeded"


async def test_recover_does_not_send_events_from_before_the_endpoint_existed(
    api: Api, clock: FrozenClock
) -> None:
    start = clock.now()
    await receive_orders(api.container, api.keys.store_id, 1, seed=1)
    clock.advance(hours=1)
    endpoint = await create_endpoint(api, "http://127.0.0.1:9/hooks", enabled=False)
    clock.advance(hours=1)
    await receive_orders(api.container, api.keys.store_id, 1, seed=2)
    result = await call(api, "POST", f"/{endpoint['id']}/recover", json={"since": rfc3339(start)})
    assert result == {"requeued": 0, "created": 1}
