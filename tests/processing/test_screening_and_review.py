"""Prohibited goods and fraud screening end to end (API + worker), and the review queue:
held orders are listed with their score and hits, approved or rejected through the API,
or decided by the store's deadline policy when nobody reviews them in time."""

from __future__ import annotations

from typing import Any

import pytest

from orderbridge.clock import FrozenClock
from tests.processing.conftest import FRANCE, CountingProvider, ProcessingApi, checkout_order

pytestmark = pytest.mark.timeout(30)

# Every order of these tests is "high" (20 points) and a review starts at 10.
LOW_THRESHOLDS: dict[str, Any] = {
    "fraud": {
        "rules": {
            "review_score": 10,
            "reject_score": 500,
            "high_amount": {"points": 20, "thresholds": {"EUR": "1"}},
        }
    }
}


@pytest.mark.parametrize(
    ("hs_code", "destination", "rule"),
    [
        ("930200", None, "arms-ammunition"),  # to any destination: Germany here
        ("930200", {**FRANCE, "country": "US"}, "arms-ammunition"),
        ("360410", None, "explosives-fireworks"),
    ],
)
async def test_prohibited_item_cancels_the_order_naming_the_item(
    processing: ProcessingApi,
    provider: CountingProvider,
    hs_code: str,
    destination: dict[str, str] | None,
    rule: str,
) -> None:
    payload = checkout_order(
        "pay_ok_prohibited",
        hs_code=hs_code,
        **({"destination": destination} if destination else {}),
    )
    sku = payload["items"][0]["sku"]
    order = await processing.processed(payload)

    assert order["status"] == "CANCELLED"
    assert order["cancellation"]["reason"] == "prohibited_goods"
    assert sku in order["cancellation"]["note"]
    [step] = [e for e in await processing.timeline(order["id"]) if e["step"] == "prohibited_goods"]
    assert step["outcome"] == "fail"
    [item] = step["evidence"]["items"]
    assert (item["sku"], item["rule"]) == (sku, rule)
    # Authorised, never captured: the release voids it.
    assert provider.calls["capture"] == 0
    [release] = await processing.releases(order["id"])
    assert release.operation == "void"


async def test_prohibited_item_shipped_within_the_store_country_is_not_screened(
    processing: ProcessingApi,
) -> None:
    order = await processing.processed(
        checkout_order("pay_ok_domestic", hs_code="930200", destination=FRANCE)
    )
    assert order["status"] == "READY"
    assert "prohibited_goods" not in [s for s, _ in await processing.steps(order["id"])]


async def held_for_review(processing: ProcessingApi, reference: str) -> dict[str, Any]:
    await processing.configure(LOW_THRESHOLDS)
    order = await processing.processed(checkout_order(reference))
    assert order["status"] == "RECEIVED"
    return order


async def test_held_order_is_listed_with_its_score_hits_and_deadline(
    processing: ProcessingApi, clock: FrozenClock
) -> None:
    order = await held_for_review(processing, "pay_ok_review")

    [review] = await processing.reviews()
    assert review["order_id"] == order["id"]
    assert review["score"] >= 20
    assert "amount.high" in [hit["rule"] for hit in review["hits"]]
    assert review["on_deadline"] == "reject"
    assert review["review_deadline"].startswith(clock.now().strftime("%Y-%m-%d")[:4])
    row = await processing.row(order["id"])
    assert (row.review_status, row.review_deadline is not None) == ("pending", True)
    [fraud] = [e for e in await processing.timeline(order["id"]) if e["step"] == "fraud"]
    assert fraud["outcome"] == "review"
    assert fraud["evidence"]["score"] == review["score"]


async def test_approved_in_review_the_order_becomes_ready_with_one_capture(
    processing: ProcessingApi, provider: CountingProvider, clock: FrozenClock
) -> None:
    order = await held_for_review(processing, "pay_ok_approve")
    assert provider.calls["capture"] == 0

    response = await processing.decide(order["id"], "approve", note="known customer")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "order_id": order["id"],
        "review_status": "approved",
        "status": "RECEIVED",
    }
    await processing.api.run_jobs()

    ready = await processing.api.get(order["id"])
    assert ready["status"] == "READY"
    assert ready["payment"]["captured"] == ready["totals"]["total"]
    assert provider.calls["capture"] == 1
    assert await processing.reviews() == []
    steps = await processing.steps(order["id"])
    assert steps[-3:] == [("review", "approved"), ("fraud", "pass"), ("capture", "pass")]
    [decision] = [e for e in await processing.timeline(order["id"]) if e["step"] == "review"]
    assert decision["actor"] == "merchant"
    assert decision["actor_id"] == processing.keys.merchant_key_id
    assert decision["evidence"]["note"] == "known customer"
    # The job that waits for the review deadline stays queued until then, finds the order
    # processed and ends without effect.
    assert [job.status for job in await processing.jobs(order["id"])] == ["queued"]
    clock.advance(hours=25)
    assert await processing.api.run_jobs() == 1
    assert await processing.jobs(order["id"]) == []
    assert provider.calls["capture"] == 1

    again = await processing.decide(order["id"], "approve")
    assert (again.status_code, again.json()["status"]) == (200, "READY")


async def test_rejected_in_review_the_order_is_cancelled_fraud_detected(
    processing: ProcessingApi, provider: CountingProvider
) -> None:
    order = await held_for_review(processing, "pay_ok_reject")

    response = await processing.decide(order["id"], "reject", note="stolen card")
    assert response.status_code == 200, response.text
    await processing.api.run_jobs()

    cancelled = await processing.api.get(order["id"])
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["cancellation"]["reason"] == "fraud_detected"
    assert provider.calls["capture"] == 0
    assert provider.calls["void"] == 1
    assert await processing.reviews() == []
    steps = await processing.steps(order["id"])
    assert steps[-2:] == [("review", "rejected"), ("fraud", "fail")]

    approve = await processing.decide(order["id"], "approve")
    assert approve.status_code == 409
    assert approve.json()["code"] == "order_not_in_review"


async def test_only_orders_in_review_can_be_decided(processing: ProcessingApi) -> None:
    order = await processing.processed(checkout_order("pay_ok_not_held"))
    assert order["status"] == "READY"
    for decision in ("approve", "reject"):
        response = await processing.decide(order["id"], decision)
        assert response.status_code == 409
        assert response.json()["code"] == "order_not_in_review"
    unknown = await processing.decide(f"{processing.store_id}-999999", "approve")
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("policy", "status", "reason"),
    [("approve", "READY", None), ("reject", "CANCELLED", "fraud_detected")],
)
async def test_unreviewed_order_is_decided_by_the_deadline_policy(
    processing: ProcessingApi,
    provider: CountingProvider,
    clock: FrozenClock,
    policy: str,
    status: str,
    reason: str | None,
) -> None:
    config = {
        "fraud": {
            **LOW_THRESHOLDS["fraud"],
            "review_deadline_hours": 2,
            "on_review_deadline": policy,
        }
    }
    await processing.configure(config)
    order = await processing.processed(checkout_order(f"pay_ok_deadline_{policy}"))
    assert order["status"] == "RECEIVED"

    clock.advance(hours=1, minutes=59)
    await processing.api.run_jobs()
    assert (await processing.api.get(order["id"]))["status"] == "RECEIVED"

    clock.advance(minutes=2)
    await processing.api.run_jobs()
    decided = await processing.api.get(order["id"])
    assert decided["status"] == status
    assert (decided["cancellation"] or {}).get("reason") == reason
    assert provider.calls["capture"] == (1 if policy == "approve" else 0)
    [*_, fraud] = [e for e in await processing.timeline(order["id"]) if e["step"] == "fraud"]
    assert "not reviewed in time" in fraud["summary"]
    assert (await processing.row(order["id"])).review_status == {
        "approve": "approved",
        "reject": "rejected",
    }[policy]


async def test_block_listed_email_is_rejected_whatever_the_score(
    processing: ProcessingApi, provider: CountingProvider
) -> None:
    await processing.configure(
        {"fraud": {"rules": {"block_lists": {"emails": ["Mallory+shop@Example.com"]}}}}
    )
    order = await processing.processed(
        checkout_order("pay_ok_blocked", email="mallory@example.com")
    )
    assert order["status"] == "CANCELLED"
    assert order["cancellation"]["reason"] == "fraud_detected"
    [fraud] = [e for e in await processing.timeline(order["id"]) if e["step"] == "fraud"]
    assert "blocklist.email" in [hit["rule"] for hit in fraud["evidence"]["hits"]]
    assert provider.calls["capture"] == 0

    other = await processing.processed(checkout_order("pay_ok_not_blocked"))
    assert other["status"] == "READY"
