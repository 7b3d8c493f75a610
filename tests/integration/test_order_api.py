"""The merchant Order API through HTTP: lifecycle, accept and cancel rules (contract §4)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from orderbridge.db.models import Event, Job
from tests.conftest import Api


async def _event_names(api: Api, order_id: str) -> list[str]:
    page = await api.events(after_event_id="", limit=100)
    return [e["event_name"] for e in page["events"] if e["order_id"] == order_id]


async def test_submitted_order_is_received_with_its_event_and_processing_job(
    api: Api, order_payload: dict[str, Any]
) -> None:
    order = await api.new_order(order_payload)
    assert order["status"] == "RECEIVED"
    assert order["id"].startswith(f"{api.keys.store_id}-")
    assert order["totals"]["total"] == order_payload["totals"]["total"]
    assert order["payment"]["status"] == "pending"
    assert await _event_names(api, order["id"]) == ["order.received"]
    async with api.container.db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(Job)) == 1


async def test_repeat_submission_returns_the_same_order_and_writes_nothing(
    api: Api, order_payload: dict[str, Any]
) -> None:
    first = await api.submit(order_payload, key="checkout-1")
    again = await api.submit(order_payload, key="checkout-1")
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    async with api.container.db.reader() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 1
        assert await session.scalar(select(func.count()).select_from(Job)) == 1


async def test_checkout_id_serves_as_the_idempotency_key(
    api: Api, order_payload: dict[str, Any]
) -> None:
    order_payload["checkout_id"] = "chk_42"
    url = f"/v2/checkout/{api.keys.store_id}/orders"
    first = await api.client.post(url, json=order_payload, headers=api.keys.checkout)
    again = await api.client.post(url, json=order_payload, headers=api.keys.checkout)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


async def test_submission_without_any_idempotency_key_is_refused(
    api: Api, order_payload: dict[str, Any]
) -> None:
    response = await api.client.post(
        f"/v2/checkout/{api.keys.store_id}/orders", json=order_payload, headers=api.keys.checkout
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "header.Idempotency-Key"


async def test_same_key_with_another_order_is_a_conflict(
    api: Api, order_payload: dict[str, Any]
) -> None:
    assert (await api.submit(order_payload, key="k")).status_code == 201
    order_payload["customer_note"] = "leave at the door"
    response = await api.submit(order_payload, key="k")
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"


async def test_worker_makes_a_received_order_ready(api: Api, order_payload: dict[str, Any]) -> None:
    order = await api.ready_order(order_payload)
    assert order["status"] == "READY"
    assert await _event_names(api, order["id"]) == ["order.received", "order.ready"]


async def test_accept_sets_external_ids_and_finalisation_completes(
    api: Api, order_payload: dict[str, Any]
) -> None:
    order = await api.ready_order(order_payload)
    response = await api.accept(order["id"], "92", "00092")
    assert response.status_code == 200
    assert response.json()["status"] == "ACCEPTED"
    assert response.json()["external"] == {"order_id": "92", "order_number": "00092"}
    await api.run_jobs()
    assert (await api.get(order["id"]))["status"] == "COMPLETED"
    page = await api.events(after_event_id="", event=["order.accepted", "order.completed"])
    assert [(e["event_name"], e["external"]["order_number"]) for e in page["events"]] == [
        ("order.accepted", "00092"),
        ("order.completed", "00092"),
    ]


@pytest.mark.parametrize("after_completion", [False, True])
async def test_second_accept_with_the_same_values_is_a_quiet_success(
    api: Api, order_payload: dict[str, Any], after_completion: bool
) -> None:
    order = await api.ready_order(order_payload)
    await api.accept(order["id"])
    if after_completion:
        await api.run_jobs()
    again = await api.accept(order["id"])
    assert again.status_code == 200
    assert again.json()["status"] == ("COMPLETED" if after_completion else "ACCEPTED")
    assert (await _event_names(api, order["id"])).count("order.accepted") == 1


@pytest.mark.parametrize(("ext_id", "number"), [("93", "00092"), ("92", "00093")])
async def test_second_accept_with_other_values_is_rejected(
    api: Api, order_payload: dict[str, Any], ext_id: str, number: str
) -> None:
    order = await api.ready_order(order_payload)
    await api.accept(order["id"], "92", "00092")
    response = await api.accept(order["id"], ext_id, number)
    assert response.status_code == 409
    assert response.json()["code"] == "order_already_accepted"
    assert (await api.get(order["id"]))["external"]["order_id"] == "92"


async def test_accepting_a_received_order_is_not_ready(
    api: Api, order_payload: dict[str, Any]
) -> None:
    order = await api.new_order(order_payload)
    response = await api.accept(order["id"])
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "order_not_ready"


async def test_accepting_a_cancelled_order_is_refused(
    api: Api, order_payload: dict[str, Any]
) -> None:
    order = await api.ready_order(order_payload)
    assert (await api.cancel(order["id"])).status_code == 200
    response = await api.accept(order["id"])
    assert response.status_code == 409 and response.json()["code"] == "order_cancelled"


@pytest.mark.parametrize("stage", ["RECEIVED", "READY", "ACCEPTED"])
async def test_merchant_cancels_an_unshipped_order(
    api: Api, order_payload: dict[str, Any], stage: str
) -> None:
    order = await api.new_order(order_payload)
    if stage != "RECEIVED":
        await api.run_jobs()
    if stage == "ACCEPTED":
        await api.accept(order["id"])
    response = await api.cancel(order["id"], {"note": "out of stock"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "CANCELLED"
    assert body["cancellation"]["reason"] == "merchant_request"
    assert body["cancellation"]["by"] == "merchant"
    assert body["cancellation"]["note"] == "out of stock"
    await api.run_jobs()  # the pending process/finalise job must not revive it
    assert (await api.get(order["id"]))["status"] == "CANCELLED"


async def test_cancel_without_a_body_uses_merchant_request(
    api: Api, order_payload: dict[str, Any]
) -> None:
    order = await api.new_order(order_payload)
    response = await api.client.post(
        f"/v2/orders/{api.keys.store_id}/{order['id']}/cancel", headers=api.keys.merchant
    )
    assert response.status_code == 200
    assert response.json()["cancellation"]["reason"] == "merchant_request"


async def test_repeated_cancel_returns_the_order_unchanged(
    api: Api, order_payload: dict[str, Any]
) -> None:
    order = await api.new_order(order_payload)
    first = await api.cancel(order["id"], {"note": "first"})
    again = await api.cancel(order["id"], {"note": "second", "reason": "fraud_detected"})
    assert again.status_code == 200 and again.json() == first.json()
    assert (await _event_names(api, order["id"])).count("order.cancelled") == 1


async def test_cancelling_a_completed_order_asks_for_a_refund(
    api: Api, order_payload: dict[str, Any]
) -> None:
    order = await api.ready_order(order_payload)
    await api.accept(order["id"])
    await api.run_jobs()
    response = await api.cancel(order["id"])
    assert response.status_code == 409 and response.json()["code"] == "use_refund"


async def test_merchant_cannot_give_a_system_reason(
    api: Api, order_payload: dict[str, Any]
) -> None:
    order = await api.new_order(order_payload)
    response = await api.cancel(order["id"], {"reason": "payment_failed"})
    assert response.status_code == 422


async def test_timeline_records_actor_reason_and_time_of_every_change(
    api: Api, order_payload: dict[str, Any]
) -> None:
    order = await api.ready_order(order_payload)
    await api.cancel(order["id"], {"note": "customer called"})
    response = await api.client.get(
        f"/v2/orders/{api.keys.store_id}/{order['id']}/timeline", headers=api.keys.merchant
    )
    entries = [e for e in response.json()["entries"] if e["kind"] == "status_changed"]
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in entries] == [
        (None, "RECEIVED", "system"),
        ("RECEIVED", "READY", "system"),
        ("READY", "CANCELLED", "merchant"),
    ]
    assert entries[2]["actor_id"] == api.keys.merchant_key_id
    assert entries[2]["reason"] == "merchant_request"
    assert entries[2]["note"] == "customer called"
    assert all(e["at"].endswith("Z") for e in entries)


async def test_list_filters_by_status_and_searches(api: Api, rng: Any) -> None:
    from orderbridge.demo import sample_order

    first = await api.ready_order(sample_order(rng))
    second = await api.new_order(sample_order(rng))
    await api.accept(first["id"], "X-1", "N-0001")
    url = f"/v2/orders/{api.keys.store_id}"

    async def ids(**params: Any) -> list[str]:
        response = await api.client.get(url, params=params, headers=api.keys.merchant)
        assert response.status_code == 200, response.text
        return [o["id"] for o in response.json()["orders"]]

    assert await ids() == [second["id"], first["id"]]
    assert await ids(status="ACCEPTED") == [first["id"]]
    assert await ids(status=["ACCEPTED", "RECEIVED"]) == [second["id"], first["id"]]
    assert await ids(q="N-0001") == [first["id"]]
    assert await ids(q=first["id"]) == [first["id"]]
    assert await ids(q=second["customer"]["email"].upper()) == [second["id"]]
    assert await ids(q="nobody@example.com") == []


async def test_list_pages_follow_links(api: Api, rng: Any) -> None:
    from orderbridge.demo import sample_order

    created = [(await api.new_order(sample_order(rng)))["id"] for _ in range(5)]
    url: str | None = f"/v2/orders/{api.keys.store_id}?limit=2"
    seen: list[str] = []
    while url:
        page = (await api.client.get(url, headers=api.keys.merchant)).json()
        seen += [o["id"] for o in page["orders"]]
        url = page["links"]["next"] if page["orders"] else None
    assert seen == list(reversed(created))
