"""Orders that need the merchant: the needs-attention filter, a failed push shown in the list
and on the order page with its attempts, and "retry push" from the page (plug & play with a
merchant's custom endpoint on loopback, as in tests/plugnplay)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import update

from orderbridge.db.models import Order
from orderbridge.ids import parse_order_id
from tests.conftest import Api
from tests.plugnplay.conftest import PlugAndPlay, endpoint, pnp  # noqa: F401 (fixtures)
from tests.ui.conftest import Browser, Person
from tests.ui.test_orders import _ids_in


async def test_retry_push_from_the_order_page(
    pnp: PlugAndPlay,  # noqa: F811
    browser: Browser,
    owner: Person,
) -> None:
    await pnp.connect()
    payload = pnp.payload(stocked=False)
    failed = await pnp.ready(payload)
    fine = await pnp.ready()
    assert (await pnp.log(failed["id"]))["push_status"] == "failed"
    await browser.login(owner)
    sid = pnp.store_id
    flagged = await browser.get(
        f"/account/stores/{sid}/orders", params={"attention": "push_failed"}
    )
    assert _ids_in(flagged.text, sid) == [failed["id"]]
    assert fine["id"] not in flagged.text

    page = f"/account/stores/{sid}/orders/{failed['id']}"
    shown = await browser.get(page)
    assert "push failed" in shown.text
    assert "push to custom (run 1, try 1): rejected" in shown.text
    assert "Retry push" in shown.text
    for item in payload["items"]:  # the merchant fixes the catalogue
        pnp.endpoint.add_product(item["sku"], stock=5, price=Decimal(1))
    retried = await browser.post(page + "/retry-push")
    assert retried.status_code == 303
    again = await browser.post(page + "/retry-push")
    assert again.status_code == 409
    assert "a push of this order is under way" in again.text
    await pnp.api.run_jobs()
    done = await browser.get(page)
    assert "(run 2, try 1): pushed" in done.text
    assert (await pnp.api.get(failed["id"]))["status"] == "COMPLETED"


async def test_needs_attention_finds_orders_held_for_review(
    api: Api, browser: Browser, owner: Person, order_payload: dict[str, Any]
) -> None:
    held = await api.new_order(order_payload)
    other = await api.new_order(order_payload)
    parsed = parse_order_id(held["id"])
    assert parsed is not None
    async with api.container.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.id == parsed[1]).values(review_status="pending")
        )
    await browser.login(owner)
    sid = api.keys.store_id
    for value in ("review", "any"):
        page = await browser.get(f"/account/stores/{sid}/orders", params={"attention": value})
        assert _ids_in(page.text, sid) == [held["id"]], value
    everything = await browser.get(f"/account/stores/{sid}/orders")
    assert set(_ids_in(everything.text, sid)) == {held["id"], other["id"]}
