"""The store's processing configuration through the API: defaults until set, validated with
field paths, versioned; an order keeps the version its processing started under."""

from __future__ import annotations

from typing import Any

import pytest

from orderbridge.clock import FrozenClock
from orderbridge.processing.config import ProcessingConfig
from tests.conftest import create_store_with_keys
from tests.processing.conftest import ProcessingApi, checkout_order

pytestmark = pytest.mark.timeout(30)


async def test_a_store_never_configured_shows_the_defaults_as_version_0(
    processing: ProcessingApi,
) -> None:
    response = await processing.get_config()
    assert response.status_code == 200
    assert response.json() == {
        "store_id": processing.store_id,
        "version": 0,
        "config": ProcessingConfig().model_dump(mode="json"),
    }


async def test_each_change_is_a_new_version_and_a_repeat_writes_nothing(
    processing: ProcessingApi,
) -> None:
    change = {"payment": {"deferred_deadline_hours": 24}, "fraud": {"enabled": False}}
    first = await processing.put_config(change)
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1
    config = first.json()["config"]
    assert config["payment"]["deferred_deadline_hours"] == 24
    assert config["fraud"]["enabled"] is False
    assert config["prohibited"] == ProcessingConfig().model_dump(mode="json")["prohibited"]

    assert (await processing.put_config(change)).json()["version"] == 1
    assert (await processing.put_config({})).json()["version"] == 2
    current = (await processing.get_config()).json()
    assert (current["version"], current["config"]["fraud"]["enabled"]) == (2, True)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"fraud": {"rules": {"review_score": 80, "reject_score": 40}}}, "fraud.rules"),
        ({"payment": {"action_deadline_minutes": 0}}, "payment.action_deadline_minutes"),
        ({"fraud": {"on_review_deadline": "ignore"}}, "fraud.on_review_deadline"),
        (
            {"fraud": {"rules": {"block_lists": {"ips": ["not-an-ip"]}}}},
            "fraud.rules.block_lists.ips",
        ),
        ({"prohibited": {"unknown": True}}, "prohibited.unknown"),
        ({"surprise": 1}, "surprise"),
        ({"payment": {"deferred_methods": ["bank\u0000"]}}, "payment.deferred_methods.0"),
    ],
)
async def test_an_invalid_configuration_is_refused_with_the_field_path(
    processing: ProcessingApi, document: dict[str, Any], field: str
) -> None:
    response = await processing.put_config(document)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    assert [e["field"] for e in body["errors"]] == [field]
    assert (await processing.get_config()).json()["version"] == 0


async def test_a_body_that_is_not_an_object_is_refused(processing: ProcessingApi) -> None:
    response = await processing.put_config([1, 2])
    assert response.status_code == 422


async def test_only_the_store_s_merchant_key_reads_and_writes_it(
    processing: ProcessingApi,
) -> None:
    other = await create_store_with_keys(processing.container, "Other shop")
    path = f"/v2/stores/{processing.store_id}/processing"
    client = processing.client
    assert (await client.get(path, headers=other.merchant)).status_code == 404
    assert (await client.put(path, json={}, headers=other.merchant)).status_code == 404
    assert (await client.get(path, headers=processing.keys.checkout)).status_code == 403
    assert (await client.get(path)).status_code == 401
    assert (
        await client.get(f"/v2/reviews/{processing.store_id}", headers=other.merchant)
    ).status_code == 404


async def test_a_waiting_order_keeps_the_version_it_started_under(
    processing: ProcessingApi, clock: FrozenClock
) -> None:
    assert await processing.configure({"payment": {"deferred_deadline_hours": 48}}) == 1
    waiting = await processing.processed(checkout_order("BT-1", method="bank_transfer"))
    assert waiting["status"] == "RECEIVED"
    assert (await processing.row(waiting["id"])).processing_version == 1

    # A shorter deadline and card-only payments from now on: not for the waiting order.
    assert (
        await processing.configure(
            {"payment": {"deferred_deadline_hours": 1, "deferred_methods": []}}
        )
        == 2
    )
    clock.advance(hours=47)
    await processing.api.run_jobs()
    assert (await processing.api.get(waiting["id"]))["status"] == "RECEIVED"
    confirmed = await processing.confirm(waiting["id"], waiting["totals"]["total"])
    assert confirmed.status_code == 201, confirmed.text
    await processing.api.run_jobs()
    assert (await processing.api.get(waiting["id"]))["status"] == "READY"
    assert (await processing.row(waiting["id"])).processing_version == 1

    # A new order is processed under version 2.
    later = await processing.processed(checkout_order("pay_ok_v2"))
    assert later["status"] == "READY"
    assert (await processing.row(later["id"])).processing_version == 2
