"""The event feed through HTTP: order, filters, cursors and links (contract §4)."""

from __future__ import annotations

from typing import Any

from orderbridge.demo import sample_order
from tests.conftest import Api, create_store_with_keys


async def _orders(api: Api, rng: Any, count: int) -> list[str]:
    ids = [(await api.new_order(sample_order(rng)))["id"] for _ in range(count)]
    await api.run_jobs()
    return ids


async def test_events_come_oldest_first_with_the_documented_fields(api: Api, rng: Any) -> None:
    ids = await _orders(api, rng, 2)
    events = (await api.events(after_event_id=""))["events"]
    assert [e["event_name"] for e in events][:2] == ["order.received", "order.received"]
    assert [e["order_id"] for e in events] == [ids[0], ids[1], ids[0], ids[1]]
    first = events[0]
    assert set(first) == {"event_id", "event_name", "event_at", "order_id", "external", "entity_id"}
    assert len(first["event_id"]) == 16 and first["entity_id"] is None
    assert first["external"] == {"order_id": None, "order_number": None}
    assert first["event_at"].endswith("Z")
    assert [e["event_id"] for e in events] == sorted(e["event_id"] for e in events)


async def test_following_next_visits_every_event_once_then_stays_put(api: Api, rng: Any) -> None:
    await _orders(api, rng, 5)
    all_ids = [e["event_id"] for e in (await api.events(after_event_id="", limit=100))["events"]]
    assert len(all_ids) == 10
    seen: list[str] = []
    page = await api.events(after_event_id="", limit=3)
    while page["events"]:
        seen += [e["event_id"] for e in page["events"]]
        page = (await api.client.get(page["links"]["next"], headers=api.keys.merchant)).json()
    assert seen == all_ids
    assert page["links"]["next"].endswith(f"after_event_id={all_ids[-1]}")
    # A new event shows up on the very link the poller kept calling.
    await _orders(api, rng, 1)
    page = (await api.client.get(page["links"]["next"], headers=api.keys.merchant)).json()
    assert [e["event_name"] for e in page["events"]] == ["order.received", "order.ready"]


async def test_filter_by_event_name_is_repeated_in_links(api: Api, rng: Any) -> None:
    await _orders(api, rng, 3)
    page = await api.events(after_event_id="", event=["order.ready"], limit=2)
    assert [e["event_name"] for e in page["events"]] == ["order.ready"] * 2
    assert "event=order.ready" in page["links"]["next"]
    rest = (await api.client.get(page["links"]["next"], headers=api.keys.merchant)).json()
    assert [e["event_name"] for e in rest["events"]] == ["order.ready"]


async def test_before_cursor_pages_backwards_in_feed_order(api: Api, rng: Any) -> None:
    await _orders(api, rng, 3)
    all_ids = [e["event_id"] for e in (await api.events(after_event_id="", limit=100))["events"]]
    page = await api.events(before_event_id=all_ids[4], limit=2)
    assert [e["event_id"] for e in page["events"]] == all_ids[2:4]
    previous = (await api.client.get(page["links"]["previous"], headers=api.keys.merchant)).json()
    assert [e["event_id"] for e in previous["events"]] == all_ids[0:2]
    forward = (await api.client.get(page["links"]["next"], headers=api.keys.merchant)).json()
    assert [e["event_id"] for e in forward["events"]] == all_ids[4:6]


async def test_links_are_absolute_urls(api: Api, rng: Any) -> None:
    await _orders(api, rng, 1)
    links = (await api.events(after_event_id=""))["links"]
    assert all(link.startswith("http://test/v2/events/") for link in links.values())


async def test_default_page_is_20_events(api: Api, rng: Any) -> None:
    await _orders(api, rng, 11)
    assert len((await api.events(after_event_id=""))["events"]) == 20


async def test_each_store_sees_only_its_own_events(api: Api, rng: Any) -> None:
    await _orders(api, rng, 1)
    other = await create_store_with_keys(api.container, "Other")
    other_page = await api.client.get(
        f"/v2/events/{other.store_id}", params={"after_event_id": ""}, headers=other.merchant
    )
    assert other_page.json()["events"] == []
    # A cursor of another store's feed is not a cursor of this one.
    cursor = (await api.events(after_event_id=""))["events"][0]["event_id"]
    response = await api.client.get(
        f"/v2/events/{other.store_id}",
        params={"after_event_id": cursor},
        headers=other.merchant,
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_cursor"
