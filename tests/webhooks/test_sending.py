"""How the dispatcher shares its capacity: a slow endpoint never delays the others, an
ordered endpoint gets one event at a time in feed order, a rate limit holds. Times are the
receivers' own arrival times, with generous bounds."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from orderbridge.clock import FrozenClock
from orderbridge.webhooks.targets import AHEAD_SLOTS
from tests.conftest import Api
from tests.webhooks.helpers import (
    create_endpoint,
    deliveries,
    dispatcher,
    receive_orders,
    running,
    verify,
)
from tests.webhooks.receiver import HOLD, receiver

pytestmark = pytest.mark.timeout(60)


async def feed_ids(api: Api) -> list[str]:
    events = (await api.events(after_event_id=""))["events"]
    return [e["event_id"] for e in events if e["event_name"] == "order.received"]


async def test_a_slow_endpoint_with_a_backlog_does_not_delay_another_endpoint(
    api: Api,
) -> None:
    async with receiver() as slow, receiver() as fast:
        slow.answer = lambda _n: (200, {}, 0.25)
        await create_endpoint(api, slow.url, max_concurrency=1)
        await receive_orders(api.container, api.keys.store_id, 6, seed=1)
        await create_endpoint(api, fast.url)
        await receive_orders(api.container, api.keys.store_id, 2, seed=2)
        async with running(dispatcher(api.container)):
            await fast.wait_for(2)
            await slow.wait_for(8)

    started = slow.requests[0].at
    assert fast.requests[-1].at - started < 1.0
    assert slow.requests[-1].at - started > 1.5  # eight of 0.25 s each, one by one


async def test_a_slow_endpoint_short_of_a_few_does_not_crowd_a_fast_one_out_of_claims(
    api: Api,
) -> None:
    """The slow endpoint's backlog is older than anything of the fast one and larger than a
    claim's candidates (four times the batch). Once it has finished one delivery it holds
    all it may but one; the fast one has sent everything it held. The next claims must top
    up the fast one. (White box: nothing is sent, the test moves the counts itself.)"""
    slow = await create_endpoint(api, "http://127.0.0.1:9/slow", max_concurrency=1)
    await receive_orders(api.container, api.keys.store_id, 30, seed=1)
    fast = await create_endpoint(api, "http://127.0.0.1:9/fast", max_concurrency=1)
    await receive_orders(api.container, api.keys.store_id, 10, seed=2)
    sender = dispatcher(api.container, batch_size=2)
    sender._spawn_senders = lambda _endpoint_id: None  # type: ignore[method-assign]

    async def claim_until_done() -> None:
        while (await sender._claim_and_send())[1]:
            pass

    await claim_until_done()
    await claim_until_done()  # without senders, nothing wakes the loop: claim as a poll
    claimed = sender._held[fast["id"]]
    assert 0 < claimed < 10
    sender._held[slow["id"]] = 1 + AHEAD_SLOTS - 1
    sender._held[fast["id"]] = 0
    await claim_until_done()
    assert sender._held[fast["id"]] == 10 - claimed  # the rest of its deliveries


async def test_an_ordered_endpoint_waiting_for_a_retry_does_not_hold_back_others(
    api: Api, clock: FrozenClock
) -> None:
    async with receiver() as ordered, receiver() as other:
        ordered.answer = lambda n: (500 if n == 1 else 200, {}, 0.0)
        await create_endpoint(api, ordered.url, ordered=True)
        await receive_orders(api.container, api.keys.store_id, 6, seed=1)
        # A small batch, so that the ordered endpoint's backlog fills the candidates.
        sender = dispatcher(api.container, batch_size=1)
        assert await sender.run_until_idle() == 1
        await create_endpoint(api, other.url)
        await receive_orders(api.container, api.keys.store_id, 1, seed=2)
        assert await sender.run_until_idle() == 1
        assert len(other.requests) == 1
        assert len(ordered.requests) == 1  # the others wait for the head's retry
        clock.advance(seconds=10)
        assert await sender.run_until_idle() == 7

    feed = await feed_ids(api)
    assert ordered.ids == [feed[0], *feed]


async def test_an_ordered_endpoint_gets_one_event_at_a_time_in_feed_order(api: Api) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda _n: (200, {}, 0.1)
        endpoint = await create_endpoint(api, hooks.url, ordered=True, max_concurrency=10)
        await receive_orders(api.container, api.keys.store_id, 6)
        async with running(dispatcher(api.container)):
            await hooks.wait_for(6)

    assert hooks.ids == await feed_ids(api)
    assert [orjson.loads(r.body)["event_id"] for r in hooks.requests] == hooks.ids
    gaps = [b.at - a.at for a, b in zip(hooks.requests, hooks.requests[1:], strict=False)]
    assert min(gaps) >= 0.09  # each request starts after the previous one was answered
    assert {d.status for d in await deliveries(api.container, endpoint["id"])} == {"succeeded"}


async def test_an_unordered_endpoint_gets_its_events_concurrently(api: Api) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda _n: (200, {}, 0.3)
        await create_endpoint(api, hooks.url, max_concurrency=6)
        await receive_orders(api.container, api.keys.store_id, 6)
        async with running(dispatcher(api.container)):
            await hooks.wait_for(6)

    assert hooks.requests[-1].at - hooks.requests[0].at < 0.75  # one by one: 1.5 s


@pytest.mark.parametrize(("rate", "count"), [(4.0, 8), (40.0, 40)])
async def test_a_rate_limited_endpoint_gets_about_its_rate(
    api: Api, rate: float, count: int
) -> None:
    async with receiver() as hooks:
        endpoint = await create_endpoint(api, hooks.url, rate_limit=rate, max_concurrency=count)
        await receive_orders(api.container, api.keys.store_id, count)
        async with running(dispatcher(api.container)):
            await hooks.wait_for(count, within=count / rate + 5)

    for request in hooks.requests:
        verify(endpoint["secret"], request)
    span = hooks.requests[-1].at - hooks.requests[0].at
    observed = (count - 1) / span
    assert observed <= rate * 1.5
    assert observed >= rate / 3


async def test_deliveries_claimed_ahead_go_back_to_pending_when_the_dispatcher_stops(
    api: Api,
) -> None:
    """With one slot, the dispatcher holds the delivery in flight and AHEAD_SLOTS claimed
    ahead; stopping sends no more, and those never sent are pending again at once, not left
    leased until their lease expires."""
    count = AHEAD_SLOTS + 2
    async with receiver() as hooks:
        hooks.answer = lambda n: (200, {}, HOLD if n == 1 else 0.0)
        endpoint = await create_endpoint(api, hooks.url, max_concurrency=1)
        await receive_orders(api.container, api.keys.store_id, count, seed=4)
        held = ["sending"] * (1 + AHEAD_SLOTS) + ["pending"]
        async with running(dispatcher(api.container)):
            await hooks.wait_for(1)
            for _ in range(200):  # the claim ahead follows the first claim within a poll
                rows = await deliveries(api.container, endpoint["id"])
                if [r.status for r in rows] == held:
                    break
                await asyncio.sleep(0.01)
            assert [r.status for r in rows] == held
            await asyncio.sleep(0.1)  # and it claims no more than that
            rows = await deliveries(api.container, endpoint["id"])
            assert [r.status for r in rows] == held
            stop_soon = asyncio.get_running_loop().call_later(0.05, hooks.release.set)
        stop_soon.cancel()
        rows = await deliveries(api.container, endpoint["id"])
    assert len(hooks.requests) == 1
    assert [r.status for r in rows] == ["succeeded"] + ["pending"] * (count - 1)
    assert all(r.lease_token is None and r.attempts == 0 for r in rows[1:])
