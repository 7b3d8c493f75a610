"""Webhook deliveries end to end: created with the event, signed, sent, logged."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.conftest import Api
from tests.webhooks.helpers import create_endpoint, verify
from tests.webhooks.receiver import receiver

pytestmark = pytest.mark.timeout(60)


async def test_every_event_reaches_the_endpoint_signed_and_equal_to_the_feed(
    api: Api, order_payload: dict[str, Any]
) -> None:
    async with receiver() as hooks:
        endpoint = await create_endpoint(api, hooks.url)
        assert endpoint["secret"].startswith("whsec_")
        order = await api.ready_order(order_payload)
        dispatcher = api.container.dispatcher()
        assert await dispatcher.run_until_idle() == 2
    feed = (await api.events(after_event_id=""))["events"]
    bodies = []
    for request in hooks.requests:
        verify(endpoint["secret"], request)
        assert request.headers["webhook-id"] == orjson.loads(request.body)["event_id"]
        bodies.append(orjson.loads(request.body))
    assert bodies == feed
    assert {b["order_id"] for b in bodies} == {order["id"]}
