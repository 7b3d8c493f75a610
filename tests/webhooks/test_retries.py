"""Receivers that fail, time out, throttle, answer 410 or disappear: the dispatcher follows
the retry policy, disables endpoints that are gone or failing for days, tells the merchant,
and stops retrying them. Time moves with the frozen clock only: no test sleeps through a
schedule."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orderbridge.clock import FrozenClock
from orderbridge.webhooks.policy import DEFAULT_SCHEDULE
from tests.conftest import Api
from tests.webhooks.helpers import (
    attempts,
    call,
    create_endpoint,
    deliveries,
    dispatcher,
    endpoint_row,
    only_delivery,
    receive_orders,
    verify,
)
from tests.webhooks.receiver import HOLD, receiver

pytestmark = pytest.mark.timeout(60)


async def seconds_to_next_attempt(api: Api, clock: FrozenClock, endpoint_id: str) -> float:
    delivery = await only_delivery(api.container, endpoint_id)
    assert delivery.status == "pending"
    return (delivery.next_attempt_at - clock.now()).total_seconds()


async def test_a_failing_receiver_gets_eight_attempts_on_the_jittered_schedule(
    api: Api, clock: FrozenClock
) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda _n: (500, {}, 0.0)
        endpoint = await create_endpoint(api, hooks.url)
        await receive_orders(api.container, api.keys.store_id, 1)
        sender = dispatcher(api.container)
        assert await sender.run_until_idle() == 1
        for base in DEFAULT_SCHEDULE:
            wait = await seconds_to_next_attempt(api, clock, endpoint["id"])
            assert base * 0.8 <= wait <= base * 1.2
            clock.advance(seconds=wait - 1)
            assert await sender.run_until_idle() == 0  # not due yet
            clock.advance(seconds=1)
            assert await sender.run_until_idle() == 1
        clock.advance(days=2)
        assert await sender.run_until_idle() == 0

    assert len(hooks.requests) == 8
    assert len(set(hooks.ids)) == 1
    for request in hooks.requests:
        verify(endpoint["secret"], request)
    delivery = await only_delivery(api.container, endpoint["id"])
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 8, 500)
    assert delivery.completed_at is not None
    log = await attempts(api.container, delivery.id)
    assert [(a.attempt, a.status_code) for a in log] == [(n, 500) for n in range(1, 9)]
    # About 28 hours of failure is far from the five days that disable an endpoint.
    assert (await endpoint_row(api.container, endpoint["id"])).enabled


async def test_a_receiver_that_times_out_is_retried_after_at_least_a_minute(
    api: Api, clock: FrozenClock
) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda n: (200, {}, HOLD if n == 1 else 0.0)
        endpoint = await create_endpoint(api, hooks.url)
        await receive_orders(api.container, api.keys.store_id, 1)
        sender = dispatcher(api.container, total_timeout=0.5)
        assert await sender.run_until_idle() == 1
        wait = await seconds_to_next_attempt(api, clock, endpoint["id"])
        assert 60 <= wait <= 72
        clock.advance(seconds=wait)
        assert await sender.run_until_idle() == 1

    delivery = await only_delivery(api.container, endpoint["id"])
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    first, second = await attempts(api.container, delivery.id)
    assert (first.status_code, first.error) == (None, "timed out")
    assert 400 <= first.duration_ms < 5000
    assert second.status_code == 200


async def test_429_with_retry_after_waits_as_asked_within_six_hours(
    api: Api, clock: FrozenClock
) -> None:
    wishes = {1: "600", 2: str(7 * 86400)}  # seconds; a week is more than we wait

    def answer(n: int) -> tuple[int, dict[str, str], float]:
        return (429, {"Retry-After": wishes[n]}, 0.0) if n in wishes else (200, {}, 0.0)

    async with receiver() as hooks:
        hooks.answer = answer
        endpoint = await create_endpoint(api, hooks.url)
        await receive_orders(api.container, api.keys.store_id, 1)
        sender = dispatcher(api.container)
        assert await sender.run_until_idle() == 1
        assert await seconds_to_next_attempt(api, clock, endpoint["id"]) == 600
        clock.advance(seconds=600)
        assert await sender.run_until_idle() == 1
        assert await seconds_to_next_attempt(api, clock, endpoint["id"]) == 6 * 3600
        clock.advance(hours=6)
        assert await sender.run_until_idle() == 1

    delivery = await only_delivery(api.container, endpoint["id"])
    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    log = await attempts(api.container, delivery.id)
    assert [a.status_code for a in log] == [429, 429, 200]


async def test_a_receiver_that_disappears_gets_the_same_delivery_when_it_is_back(
    api: Api, clock: FrozenClock
) -> None:
    async with receiver() as first:
        endpoint = await create_endpoint(api, first.url)
    port = int(first.url.rsplit(":", 1)[1].split("/")[0])
    await receive_orders(api.container, api.keys.store_id, 1)
    sender = dispatcher(api.container)
    assert await sender.run_until_idle() == 1
    wait = await seconds_to_next_attempt(api, clock, endpoint["id"])
    assert 4 <= wait <= 6
    clock.advance(seconds=wait)
    async with receiver(port=port) as back:
        assert await sender.run_until_idle() == 1

    assert first.requests == []
    [request] = back.requests
    verify(endpoint["secret"], request)
    delivery = await only_delivery(api.container, endpoint["id"])
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    refused, succeeded = await attempts(api.container, delivery.id)
    assert refused.status_code is None
    assert refused.error is not None and "connect" in refused.error.lower()
    assert succeeded.status_code == 200


async def disabled_events(api: Api) -> list[dict[str, object]]:
    events = (await api.events(after_event_id=""))["events"]
    return [e for e in events if e["event_name"] == "endpoint.disabled"]


async def test_410_disables_the_endpoint_at_once_and_tells_the_merchant(
    api: Api, clock: FrozenClock
) -> None:
    async with receiver() as gone, receiver() as watcher:
        gone.answer = lambda _n: (410, {}, 0.0)
        endpoint = await create_endpoint(api, gone.url, events=["order.received"])
        await create_endpoint(api, watcher.url, events=["endpoint.disabled"])
        await receive_orders(api.container, api.keys.store_id, 1)
        sender = dispatcher(api.container)
        await sender.run_until_idle()

        clock.advance(days=1)
        await receive_orders(api.container, api.keys.store_id, 1, seed=8)
        assert await sender.run_until_idle() == 0

    assert len(gone.requests) == 1
    shown = await call(api, "GET", f"/{endpoint['id']}")
    assert (shown["enabled"], shown["disabled_reason"]) == (False, "gone")
    delivery = (await deliveries(api.container, endpoint["id"]))[0]
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 1, 410)
    [event] = await disabled_events(api)
    assert (event["entity_id"], event["order_id"]) == (endpoint["id"], None)
    # The event goes out like any other: here to the store's other endpoint.
    [notice] = watcher.requests
    assert notice.headers["webhook-id"] == event["event_id"]


async def test_an_endpoint_failing_for_five_days_is_disabled_and_no_longer_retried(
    api: Api, clock: FrozenClock
) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda _n: (503, {}, 0.0)
        endpoint = await create_endpoint(api, hooks.url, events=["order.received"])
        sender = dispatcher(api.container)
        for seed, days in ((1, 0), (2, 3), (3, 2)):
            clock.advance(days=days)
            await receive_orders(api.container, api.keys.store_id, 1, seed=seed)
            assert await sender.run_until_idle() >= 1
            if seed < 3:
                assert (await endpoint_row(api.container, endpoint["id"])).enabled
        sent = len(hooks.requests)
        clock.advance(days=1)
        assert await sender.run_until_idle() == 0

    assert len(hooks.requests) == sent
    shown = await call(api, "GET", f"/{endpoint['id']}")
    assert (shown["enabled"], shown["disabled_reason"]) == (False, "failing")
    assert [e["entity_id"] for e in await disabled_events(api)] == [endpoint["id"]]
    # Retries wait, they are not given up: re-enabling the endpoint sends them.
    assert {d.status for d in await deliveries(api.container, endpoint["id"])} == {"pending"}


async def test_a_success_restarts_the_five_days(api: Api, clock: FrozenClock) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda n: (200 if n == 2 else 500, {}, 0.0)
        endpoint = await create_endpoint(api, hooks.url, events=["order.received"])
        sender = dispatcher(api.container)
        for seed, days in ((1, 0), (2, 4), (3, 4)):
            clock.advance(days=days)
            await receive_orders(api.container, api.keys.store_id, 1, seed=seed)
            await sender.run_until_idle()

    row = await endpoint_row(api.container, endpoint["id"])
    assert row.enabled
    assert row.failing_since is not None
    assert clock.now() - row.failing_since < timedelta(days=5)
    assert row.last_success_at is not None


async def test_the_disable_period_is_configurable(api: Api, clock: FrozenClock) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda _n: (500, {}, 0.0)
        endpoint = await create_endpoint(api, hooks.url)
        await receive_orders(api.container, api.keys.store_id, 1)
        policy = api.container.retry_policy()
        sender = dispatcher(
            api.container,
            retry=type(policy)(schedule=policy.schedule, disable_after=timedelta(minutes=10)),
        )
        await sender.run_until_idle()
        clock.advance(minutes=10)
        await sender.run_until_idle()

    row = await endpoint_row(api.container, endpoint["id"])
    assert (row.enabled, row.disabled_reason) == (False, "failing")
