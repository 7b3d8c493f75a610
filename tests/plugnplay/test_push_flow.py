"""The push end to end, through the API and the worker, against a merchant's custom endpoint:
success, retries, rejections and both failure policies, manual accept and retry push, and a
store without plug & play."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from orderbridge.bootstrap import Container
from orderbridge.clock import FrozenClock
from orderbridge.db.models import Event, Job
from orderbridge.jobs.queue import JobStatus
from tests.conftest import Api
from tests.connectors.fakes import Fault
from tests.plugnplay.conftest import PlugAndPlay

pytestmark = pytest.mark.timeout(60)


async def test_a_pushed_order_is_accepted_with_the_platform_number_and_completed(
    pnp: PlugAndPlay,
) -> None:
    await pnp.connect()

    order = await pnp.ready()

    [held] = pnp.endpoint.orders
    assert held.external_ref == order["id"]
    assert order["status"] == "COMPLETED"
    assert order["external"] == {"order_id": held.id, "order_number": held.number}
    names = await pnp.event_names(order["id"])
    assert names == ["order.received", "order.ready", "order.accepted", "order.completed"]
    log = await pnp.log(order["id"])
    assert log["push_status"] == "pushed"
    [attempt] = log["attempts"]
    assert (attempt["run"], attempt["attempt"], attempt["action"], attempt["outcome"]) == (
        1,
        1,
        "create",
        "pushed",
    )
    assert attempt["platform_order_number"] == held.number
    assert attempt["request"]["total"] == order["totals"]["total"]
    assert attempt["duration_ms"] >= 0


async def test_the_accept_is_recorded_as_made_by_plug_and_play(pnp: PlugAndPlay) -> None:
    await pnp.connect()
    order = await pnp.ready()

    async with pnp.container.db.reader() as session:
        actor = (
            await session.execute(
                select(Event.actor_kind, Event.actor_id).where(Event.name == "order.accepted")
            )
        ).one()
    assert tuple(actor) == ("plug_and_play", "push")
    assert order["status"] == "COMPLETED"


async def test_a_store_without_a_connection_keeps_the_merchant_flow(
    pnp: PlugAndPlay, api: Api
) -> None:
    order = await pnp.ready()

    assert order["status"] == "READY"
    assert await pnp.push_jobs() == []
    assert (await pnp.log(order["id"]))["push_status"] is None
    assert pnp.endpoint.requests == []
    assert (await api.accept(order["id"])).status_code == 200
    await api.run_jobs()
    assert (await api.get(order["id"]))["status"] == "COMPLETED"


async def test_a_disabled_connection_pushes_nothing(pnp: PlugAndPlay) -> None:
    await pnp.connect(enabled=False)

    order = await pnp.ready()

    assert order["status"] == "READY"
    assert pnp.endpoint.requests == []


async def test_a_retryable_failure_waits_for_the_schedule_then_succeeds(
    pnp: PlugAndPlay, clock: FrozenClock
) -> None:
    await pnp.connect(retry_delays=[60, 300])
    pnp.endpoint.fail_next(Fault("server_error"))

    order = await pnp.ready()

    assert order["status"] == "READY"
    assert (await pnp.log(order["id"]))["push_status"] == "retrying"
    [job] = await pnp.push_jobs()
    assert job.run_at == clock.now() + timedelta(seconds=60)
    assert await pnp.api.run_jobs() == 0  # not yet due

    clock.advance(seconds=60)
    await pnp.api.run_jobs()

    order = await pnp.api.get(order["id"])
    assert order["status"] == "COMPLETED"
    log = await pnp.log(order["id"])
    assert [(a["attempt"], a["action"], a["outcome"]) for a in log["attempts"]] == [
        (1, "create", "retryable"),
        (2, "create", "pushed"),  # looked first (nothing there), then created
    ]
    assert [r.method for r in pnp.endpoint.requests] == ["POST", "GET", "POST"]
    assert len(pnp.endpoint.orders) == 1


async def test_a_platform_wait_longer_than_the_schedule_is_honoured(
    pnp: PlugAndPlay, clock: FrozenClock
) -> None:
    await pnp.connect(retry_delays=[60])
    pnp.endpoint.fail_next(Fault("rate_limited", retry_after=600))

    order = await pnp.ready()

    [job] = await pnp.push_jobs()
    assert job.run_at == clock.now() + timedelta(seconds=600)
    [attempt] = (await pnp.log(order["id"]))["attempts"]
    assert attempt["response"]["retry_after"] == "600"


async def test_a_timeout_after_the_platform_created_the_order_finds_it_instead_of_duplicating(
    pnp: PlugAndPlay, clock: FrozenClock
) -> None:
    await pnp.connect(retry_delays=[30])
    pnp.endpoint.fail_next(Fault("timeout_after_create"))

    order = await pnp.ready()
    assert order["status"] == "READY"
    assert len(pnp.endpoint.orders) == 1

    clock.advance(seconds=30)
    await pnp.api.run_jobs()

    [held] = pnp.endpoint.orders
    order = await pnp.api.get(order["id"])
    assert (order["status"], order["external"]["order_number"]) == ("COMPLETED", held.number)
    log = await pnp.log(order["id"])
    assert [(a["action"], a["outcome"]) for a in log["attempts"]] == [
        ("create", "retryable"),
        ("find", "found"),
    ]


async def test_a_rejection_under_notify_flags_the_order_and_emits_push_failed(
    pnp: PlugAndPlay, api: Api
) -> None:
    await pnp.connect(failure_policy="notify")

    order = await pnp.ready(pnp.payload(stocked=False))  # the platform knows no SKU

    assert order["status"] == "READY"
    log = await pnp.log(order["id"])
    assert log["push_status"] == "failed"
    [attempt] = log["attempts"]
    assert (attempt["outcome"], attempt["code"]) == ("rejected", "product_not_found")
    assert "order.push_failed" in await pnp.event_names(order["id"])
    page = await api.events(after_event_id="", event="order.push_failed")
    [event] = page["events"]
    assert event["order_id"] == order["id"]
    assert event["external"] == {"order_id": None, "order_number": None}
    timeline = await api.client.get(
        f"/v2/orders/{pnp.store_id}/{order['id']}/timeline", headers=pnp.headers
    )
    [entry] = [e for e in timeline.json()["entries"] if e["event_name"] == "order.push_failed"]
    assert (entry["actor"], entry["reason"]) == ("plug_and_play", "product_not_found")
    assert entry["note"]

    # The merchant can still take the order by hand.
    assert (await api.accept(order["id"], "M-1", "M-0001")).status_code == 200
    await api.run_jobs()
    assert (await api.get(order["id"]))["status"] == "COMPLETED"


async def test_retry_push_after_a_failure_pushes_the_order(pnp: PlugAndPlay) -> None:
    await pnp.connect()
    payload = pnp.payload(stocked=False)
    order = await pnp.ready(payload)
    assert (await pnp.log(order["id"]))["push_status"] == "failed"
    for item in payload["items"]:  # the merchant fixes the catalogue
        pnp.endpoint.add_product(item["sku"], stock=5, price=Decimal(1))

    response = await pnp.retry(order["id"])
    assert response.status_code == 202, response.text
    assert response.json()["push_status"] == "pending"
    assert (await pnp.retry(order["id"])).json()["code"] == "push_in_progress"
    await pnp.api.run_jobs()

    order = await pnp.api.get(order["id"])
    assert order["status"] == "COMPLETED"
    log = await pnp.log(order["id"])
    assert [(a["run"], a["attempt"], a["outcome"]) for a in log["attempts"]] == [
        (1, 1, "rejected"),
        (2, 1, "pushed"),
    ]


async def test_retry_push_of_a_completed_order_is_refused(pnp: PlugAndPlay) -> None:
    await pnp.connect()
    order = await pnp.ready()

    response = await pnp.retry(order["id"])

    assert response.status_code == 409
    assert response.json()["code"] == "push_not_possible"


async def test_exhausted_attempts_under_cancel_cancel_the_order_and_release_the_money(
    pnp: PlugAndPlay, clock: FrozenClock
) -> None:
    await pnp.connect(failure_policy="cancel", max_attempts=2, retry_delays=[10])
    pnp.endpoint.fail_next(Fault("server_error"))
    pnp.endpoint.fail_next(Fault("server_error"))

    order = await pnp.ready()
    assert order["payment"]["captured"] == order["totals"]["total"]
    clock.advance(seconds=10)
    await pnp.api.run_jobs()

    order = await pnp.api.get(order["id"])
    assert order["status"] == "CANCELLED"
    assert order["cancellation"]["reason"] == "store_push_failed"
    assert order["cancellation"]["by"] == "system"
    assert "gave up after 2 attempt(s)" in order["cancellation"]["note"]
    # The release job returned what was captured, through the test payment provider.
    [release] = order["refunds"]
    assert (release["kind"], release["status"]) == ("cancellation", "succeeded")
    assert order["payment"]["refunded"] == order["payment"]["captured"]
    assert "order.push_failed" not in await pnp.event_names(order["id"])
    assert pnp.endpoint.orders == []


async def test_a_merchant_accept_before_the_push_runs_stops_the_push(
    pnp: PlugAndPlay, api: Api
) -> None:
    order = await pnp.ready()  # READY before the store connected: no push yet
    await pnp.connect()
    assert (await pnp.retry(order["id"])).status_code == 202

    assert (await api.accept(order["id"])).status_code == 200
    await api.run_jobs()

    assert pnp.endpoint.requests == []
    assert (await api.get(order["id"]))["external"]["order_number"] == "00092"
    assert (await pnp.log(order["id"]))["push_status"] == "skipped"


async def test_the_platform_call_holds_no_database_transaction(pnp: PlugAndPlay, api: Api) -> None:
    """While the platform works on a push, the database takes other writes: on SQLite a
    push made inside the job's transaction would hold the only write lock meanwhile."""
    await pnp.connect()
    arriving = pnp.payload()
    answers: list[int] = []

    async def an_order_arrives() -> None:
        response = await asyncio.wait_for(api.submit(arriving), 5)
        answers.append(response.status_code)

    pnp.endpoint.on_next_create = an_order_arrives
    order = await pnp.ready()

    assert answers == [201]
    assert order["status"] == "COMPLETED"


async def test_retry_push_is_possible_when_the_push_job_failed_for_good(
    pnp: PlugAndPlay, container: Container
) -> None:
    order = await pnp.ready()
    await pnp.connect()
    assert (await pnp.retry(order["id"])).status_code == 202
    async with container.db.transaction() as session:  # an operator gave up on the job
        await session.execute(update(Job).values(status=JobStatus.FAILED.value))

    response = await pnp.retry(order["id"])
    assert response.status_code == 202, response.text
    await pnp.api.run_jobs()

    assert (await pnp.api.get(order["id"]))["status"] == "COMPLETED"
