from __future__ import annotations

from typing import Any

from tests.conftest import Api


async def test_order_goes_received_ready_accepted_completed(
    api: Api, order_payload: dict[str, Any]
) -> None:
    order = await api.new_order(order_payload)
    assert order["status"] == "RECEIVED"
    await api.run_jobs()
    assert (await api.get(order["id"]))["status"] == "READY"
    assert (await api.accept(order["id"])).status_code == 200
    await api.run_jobs()
    final = await api.get(order["id"])
    assert final["status"] == "COMPLETED"
    assert final["external"] == {"order_id": "92", "order_number": "00092"}
    names = [e["event_name"] for e in (await api.events(after_event_id=""))["events"]]
    assert names == ["order.received", "order.ready", "order.accepted", "order.completed"]
