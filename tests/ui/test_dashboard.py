"""The dashboard: orders received today and this week by status, in the viewer's time
zone; the orders that need attention; failing webhook endpoints for owners only."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text, update

from orderbridge.bootstrap import Container
from orderbridge.clock import FrozenClock
from orderbridge.db.models import Order, WebhookEndpoint
from orderbridge.ids import parse_order_id
from orderbridge.webhooks.schemas import EndpointCreate
from tests.conftest import Api, StoreKeys
from tests.ui.conftest import Browser, Person
from tests.webhooks.conftest import WEBHOOK_TABLES


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 1, 1, 12, tzinfo=UTC))  # a Thursday


@pytest.fixture
async def container(container: Container) -> AsyncIterator[Container]:
    yield container
    async with container.db.transaction() as session:
        for table in WEBHOOK_TABLES:
            await session.execute(text(f"DELETE FROM {table}"))


def dashboard_url(store_id: str) -> str:
    return f"/account/stores/{store_id}/dashboard"


def cell(page: str, label: str, status: str) -> str:
    """The count in the row of ``status`` and the column ``label`` (Today, This week)."""
    row = re.search(rf"s-{status}\">.*?</tr>", page, re.S)
    assert row, f"no row for {status}"
    found = re.search(rf'data-label="{label}" class="num">(?:<a [^>]*>)?(\d+)', row.group(0))
    assert found, row.group(0)
    return found.group(1)


async def _flag(container: Container, order: dict[str, Any], **values: str) -> None:
    _, number = parse_order_id(order["id"]) or ("", 0)
    async with container.db.transaction() as session:
        await session.execute(update(Order).where(Order.id == number).values(**values))


async def test_counts_use_the_viewer_days_and_weeks_and_flags_show(
    api: Api,
    browser: Browser,
    owner: Person,
    clock: FrozenClock,
    order_payload: dict[str, Any],
) -> None:
    await api.new_order(order_payload)  # Thursday of the week before
    # Sunday 23:30 UTC is Monday 00:30 in Paris (the owner's zone): this week, not last.
    clock.advance(days=3, hours=11, minutes=30)
    await api.new_order(order_payload | {"payment": {**order_payload["payment"], "reference": "b"}})
    clock.advance(days=2, hours=10, minutes=30)  # Wednesday 10:00 UTC
    pushed = await api.new_order(
        order_payload | {"payment": {**order_payload["payment"], "reference": "c"}}
    )
    reviewed = await api.new_order(
        order_payload | {"payment": {**order_payload["payment"], "reference": "d"}}
    )
    await api.run_jobs()
    await _flag(api.container, pushed, push_status="failed")
    # Held for review: still RECEIVED (the pipeline waits for the decision).
    await _flag(api.container, reviewed, review_status="pending", status="RECEIVED")

    await browser.login(owner)
    page = (await browser.get(dashboard_url(api.keys.store_id))).text
    assert (cell(page, "Today", "READY"), cell(page, "This week", "READY")) == ("1", "2")
    assert (cell(page, "Today", "RECEIVED"), cell(page, "This week", "RECEIVED")) == ("1", "1")
    assert cell(page, "Today", "CANCELLED") == "0"
    assert "since Monday 5 January" in page  # in Paris
    assert "?status=READY&amp;from=2026-01-07" in page  # links to the list, filtered
    assert "Push to the platform failed" in page and "Pending fraud review" in page
    for order in (pushed, reviewed):
        assert f'/orders/{order["id"]}"' in page
    # Each tile's number is what its link shows in the order list.
    tiles = re.findall(r'href="([^"]*\?attention=[^"]*)"><span class="count">(\d+)<', page)
    assert [count for _, count in tiles] == ["1", "1", "0"]
    for link, count in tiles:
        listed = await browser.get(link.replace("&amp;", "&"))
        assert listed.text.count('data-label="Order"') == int(count), link


async def test_failing_endpoints_are_shown_to_owners_only(
    store: StoreKeys,
    container: Container,
    browser: Browser,
    owner: Person,
    staff: Person,
) -> None:
    async with container.db.transaction() as session:
        failing, _ = await container.webhooks.create_endpoint(
            session, store.store_id, EndpointCreate(url="http://127.0.0.1:9/failing")
        )
        await container.webhooks.create_endpoint(
            session, store.store_id, EndpointCreate(url="http://127.0.0.1:9/healthy")
        )
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == failing.id)
            .values(failing_since=container.clock.now())
        )
    await browser.login(owner)
    page = (await browser.get(dashboard_url(store.store_id))).text
    assert "http://127.0.0.1:9/failing" in page and "http://127.0.0.1:9/healthy" not in page
    assert "Nothing needs you right now." in page

    browser.client.cookies.clear()
    await browser.login(staff)
    staff_page = await browser.get(dashboard_url(store.store_id))
    assert staff_page.status_code == 200
    assert "Failing webhook endpoints" not in staff_page.text
    assert "/failing" not in staff_page.text
