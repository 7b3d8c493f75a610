"""Webhook deliveries end to end: created with the event, signed, sent, logged."""

from __future__ import annotations

from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook

from tests.conftest import Api
from tests.webhooks.receiver import receiver


async def _endpoint(api: Api, url: str, **fields: Any) -> dict[str, Any]:
    response = await api.client.post(
        f"/v2/webhooks/{api.keys.store_id}",
        json={"url": url, **fields},
        headers=api.keys.merchant,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_event_reaches_the_endpoint_signed_and_equal_to_the_feed(
    api: Api, order_payload: dict[str, Any]
) -> None:
    async with receiver() as hooks:
        endpoint = await _endpoint(api, hooks.url)
        assert endpoint["secret"].startswith("whsec_")
        order = await api.ready_order(order_payload)
        dispatcher = api.container.dispatcher()
        assert await dispatcher.run_until_idle() == 2
    feed = (await api.events(after_event_id=""))["events"]
    verifier = Webhook(endpoint["secret"])
    bodies = []
    for request in hooks.requests:
        verifier.verify(request.body, request.headers)
        assert request.headers["webhook-id"] == orjson.loads(request.body)["event_id"]
        bodies.append(orjson.loads(request.body))
    assert bodies == feed
    assert {b["order_id"] for b in bodies} == {order["id"]}
