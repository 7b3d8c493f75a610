"""The Merchant Account in a real browser: what a merchant does in a day, against the real
service with its worker. Each test starts from a fresh browser context and makes the
orders it needs through the checkout API."""

from __future__ import annotations

import asyncio
import re
import secrets
import time

import httpx
from playwright.async_api import Page, expect
from standardwebhooks.webhooks import Webhook

from tests.browser.conftest import Screenshots, World, sign_in
from tests.webhooks.receiver import receiver

# A Standard Webhooks secret for the custom endpoint connector (32 bytes, base64).
CUSTOM_SECRET = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="


def order_url(world: World, store_id: str, order_id: str) -> str:
    return world.url(f"/account/stores/{store_id}/orders/{order_id}")


async def test_sign_in_and_find_an_order_by_search(
    page: Page, world: World, screenshots: Screenshots
) -> None:
    surname = "Quill" + secrets.token_hex(3)
    order = await world.orders.ready(world.store_a, first_name="Henrietta", last_name=surname)
    await world.orders.ready(world.store_a)  # another order, which the search leaves out
    await page.goto(world.url("/account/login"))
    await screenshots.take(page, "sign-in")
    await sign_in(page, world, world.owner_a)
    await expect(page.get_by_role("heading", name="Orders", exact=True)).to_be_visible()
    await screenshots.take(page, "orders")

    await page.get_by_label("Search").fill(surname)
    await page.get_by_role("button", name="Filter").click()
    rows = page.locator("main table tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(f"Henrietta {surname}")
    await rows.first.get_by_role("link", name=order["id"]).click()
    await expect(page).to_have_url(order_url(world, world.store_a.store_id, order["id"]))
    await expect(page.get_by_role("heading", name="Accept")).to_be_visible()
    await screenshots.take(page, "order")


async def test_accept_an_order(owner_page: Page, world: World) -> None:
    order = await world.orders.ready(world.store_a)
    await owner_page.goto(order_url(world, world.store_a.store_id, order["id"]))
    await owner_page.get_by_label("Your order id").fill("ERP-7781")
    await owner_page.get_by_label("Your order number").fill("10042")
    await owner_page.get_by_role("button", name="Accept order").click()
    await expect(owner_page.get_by_role("status")).to_contain_text("Order accepted as 10042")
    accepted = await world.orders.get(world.store_a, order["id"])
    assert accepted["status"] in ("ACCEPTED", "COMPLETED")
    assert accepted["external"]["order_number"] == "10042"


async def test_form_errors_are_next_to_the_field_and_keep_what_was_typed(
    owner_page: Page, world: World
) -> None:
    order = await world.orders.ready(world.store_a)
    await owner_page.goto(order_url(world, world.store_a.store_id, order["id"]))
    await owner_page.get_by_label("Your order id").fill("ERP-typed")
    await owner_page.get_by_label("Your order number").fill("")
    await owner_page.get_by_role("button", name="Accept order").click()
    number = owner_page.get_by_label("Your order number")
    await expect(number).to_have_attribute("aria-invalid", "true")
    error = owner_page.locator("#e-external_order_number")
    await expect(error).to_be_visible()
    # The message belongs to its field: described by it, in the same field block.
    await expect(number).to_have_attribute(
        "aria-describedby", re.compile("e-external_order_number")
    )
    field = owner_page.locator(".field", has=owner_page.locator("#f-external_order_number"))
    await expect(field.locator(".error")).to_have_text(await error.inner_text())
    await expect(owner_page.get_by_label("Your order id")).to_have_value("ERP-typed")
    assert (await world.orders.get(world.store_a, order["id"]))["status"] == "READY"

    # The same on a settings form: a refused URL, the typed description kept.
    await owner_page.goto(
        world.url(f"/account/stores/{world.store_a.store_id}/settings/webhooks/new")
    )
    await owner_page.get_by_label("URL").fill("ftp://files.example/hooks")
    await owner_page.get_by_label("Description").fill("typed before the error")
    await owner_page.get_by_role("button", name="Add endpoint").click()
    await expect(owner_page.locator("#e-url")).to_be_visible()
    await expect(owner_page.get_by_label("URL")).to_have_value("ftp://files.example/hooks")
    await expect(owner_page.get_by_label("Description")).to_have_value("typed before the error")


async def test_cancel_an_order_after_confirming_the_refund(owner_page: Page, world: World) -> None:
    order = await world.orders.ready(world.store_a)
    await owner_page.goto(order_url(world, world.store_a.store_id, order["id"]))
    await owner_page.get_by_label("Note (optional)").fill("customer asked by phone")
    await owner_page.get_by_role("button", name="Cancel order").click()
    # Not confirmed: refused, the note kept.
    await expect(owner_page.locator("#e-confirm")).to_be_visible()
    await expect(owner_page.get_by_label("Note (optional)")).to_have_value(
        "customer asked by phone"
    )
    confirm = owner_page.get_by_label(re.compile("give the buyer back the full"))
    await confirm.check()
    await owner_page.get_by_role("button", name="Cancel order").click()
    await expect(owner_page.get_by_role("status")).to_contain_text("Order cancelled")
    assert (await world.orders.get(world.store_a, order["id"]))["status"] == "CANCELLED"


async def test_refund_part_of_a_completed_order(owner_page: Page, world: World) -> None:
    order = await world.orders.completed(world.store_a)
    await owner_page.goto(order_url(world, world.store_a.store_id, order["id"]))
    await owner_page.get_by_label(re.compile(r"^Amount")).fill("5.00")
    await owner_page.get_by_role("button", name="Refund", exact=True).click()
    await expect(owner_page.get_by_role("status")).to_contain_text("Refund of 5.00 EUR started")
    refunded = await world.orders.wait_until(
        world.store_a, order["id"], lambda o: o["payment"]["refunded"] == "5.00"
    )
    assert refunded["status"] == "COMPLETED"


async def test_create_and_revoke_a_key(
    owner_page: Page, world: World, screenshots: Screenshots
) -> None:
    page = owner_page
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    await (
        page.get_by_role("navigation", name="Settings").get_by_role("link", name="API keys").click()
    )
    await screenshots.take(page, "settings-keys")
    await page.get_by_label("Label").fill("Browser ERP")
    await page.get_by_role("button", name="Create key").click()
    secret = await page.get_by_label("Key", exact=True).input_value()
    assert secret.startswith("GL.")
    events = f"{world.base_url}/v2/events/{world.store_a.store_id}"
    bearer = {"Authorization": f"Bearer {secret}"}
    async with httpx.AsyncClient() as api:
        assert (await api.get(events, headers=bearer)).status_code == 200
        await page.get_by_role("link", name="Done, back to the keys").click()
        row = page.locator("tr", has_text="Browser ERP")
        await expect(row).to_contain_text("active")
        await row.get_by_role("link", name=re.compile("Revoke")).click()
        await expect(page.get_by_role("heading", name=re.compile("Revoke key"))).to_be_visible()
        await page.get_by_role("button", name="Revoke the key").click()
        await expect(page.get_by_role("status")).to_contain_text("revoked")
        await expect(page.locator("tr", has_text="Browser ERP")).to_contain_text("revoked")
        assert (await api.get(events, headers=bearer)).status_code == 401


async def test_add_a_webhook_endpoint_that_receives_signed_events(
    owner_page: Page, world: World, screenshots: Screenshots
) -> None:
    page = owner_page
    async with receiver() as hooks:
        await page.goto(world.url(f"/account/stores/{world.store_a.store_id}/settings/webhooks"))
        await page.get_by_role("link", name="Add endpoint").click()
        await page.get_by_label("URL").fill(hooks.url)
        await page.get_by_label("Description").fill("Browser receiver")
        await page.get_by_label("order.ready").check()
        await page.get_by_role("button", name="Add endpoint").click()
        await expect(page.get_by_role("status")).to_contain_text("Endpoint added")
        endpoint_page = page.url
        await page.get_by_role("button", name="Reveal secret").click()
        secret = await page.get_by_label("Current secret").input_value()
        assert secret.startswith("whsec_")

        order = await world.orders.ready(world.store_a)
        await hooks.wait_for(1)
        request = hooks.requests[0]
        delivered = Webhook(secret).verify(request.body, request.headers)
        assert delivered["event_name"] == "order.ready"
        assert delivered["order_id"] == order["id"]
        # The dispatcher writes results in batches: the log shows "succeeded" a moment
        # after the receiver answered. The page is reloaded until it does.
        newest = page.locator("#log ~ table tbody tr").first
        deadline = time.monotonic() + 15
        while True:
            await page.goto(endpoint_page)
            if "succeeded" in await newest.inner_text() or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        await expect(newest).to_contain_text("succeeded")
        await screenshots.take(page, "settings-webhook")
        # The delivery with its attempt, sent again on request.
        await newest.get_by_role("link").click()
        await expect(page.get_by_role("cell", name="HTTP 200")).to_be_visible()
        await screenshots.take(page, "settings-delivery")
        await page.get_by_role("button", name="Resend now").click()
        await expect(page.get_by_role("status")).to_contain_text("queued to be sent again")
        await hooks.wait_for(2)
        assert hooks.requests[1].headers["webhook-id"] == request.headers["webhook-id"]
    await page.goto(endpoint_page)
    # The receiver is gone: disable the endpoint so that later orders are not sent to it.
    await page.get_by_role("button", name="Disable").click()
    await expect(page.get_by_role("status")).to_contain_text("Endpoint disabled")
    await expect(page.get_by_role("button", name="Enable")).to_be_visible()


async def test_a_user_of_store_a_cannot_open_store_b_order(owner_page: Page, world: World) -> None:
    theirs = await world.orders.submit(world.store_b)
    response = await owner_page.goto(order_url(world, world.store_b.store_id, theirs["id"]))
    assert response is not None and response.status == 404
    await expect(owner_page.get_by_role("heading", name="Not found")).to_be_visible()
    await expect(owner_page.locator("main")).not_to_contain_text(theirs["id"])
    # Nor through their own store's path with the other store's order id.
    response = await owner_page.goto(order_url(world, world.store_a.store_id, theirs["id"]))
    assert response is not None and response.status == 404


async def test_staff_runs_orders_but_has_no_settings(
    page: Page, world: World, screenshots: Screenshots
) -> None:
    await sign_in(page, world, world.staff_a)
    nav = page.get_by_role("navigation", name="Main")
    await expect(nav.get_by_role("link", name="Orders")).to_be_visible()
    await expect(nav.get_by_role("link", name="Settings")).to_have_count(0)
    response = await page.goto(world.url(f"/account/stores/{world.store_a.store_id}/settings"))
    assert response is not None and response.status == 403


async def test_dashboard_and_store_settings(
    owner_page: Page, world: World, screenshots: Screenshots
) -> None:
    page = owner_page
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    await expect(page.get_by_role("heading", name="Orders received")).to_be_visible()
    await screenshots.take(page, "dashboard")
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    await expect(page.get_by_role("heading", name="Processing")).to_be_visible()
    await screenshots.take(page, "settings-store")
    # A processing option: refused next to its field with the typed text kept, then saved.
    hours = page.get_by_label("Hours to review a held order")
    await hours.fill("a day")
    await page.get_by_role("button", name="Save processing options").click()
    await expect(page.locator("#e-fraud\\.review_deadline_hours")).to_be_visible()
    await expect(hours).to_have_value("a day")
    await hours.fill("36")
    await page.get_by_role("button", name="Save processing options").click()
    await expect(page.get_by_role("status")).to_contain_text("Processing options saved")
    await expect(page.get_by_label("Hours to review a held order")).to_have_value("36")

    # Plug & play: choose the platform, fill its fields, save, test.
    await page.get_by_label("Platform", exact=True).select_option("custom")
    await page.get_by_role("button", name="Show its fields").click()
    await page.get_by_label("Platform URL").fill("http://127.0.0.1:9/orders")
    await page.get_by_label("Signing secret").fill(CUSTOM_SECRET)
    await page.get_by_label("When a push keeps failing").select_option("cancel")
    await page.get_by_role("button", name="Save connection").click()
    await expect(page.get_by_role("status")).to_contain_text("Connection created")
    await expect(page.locator("main")).not_to_contain_text(CUSTOM_SECRET)
    await page.get_by_role("button", name="Test connection").click()
    await expect(page.get_by_role("status")).to_contain_text("Connection test failed")
    await screenshots.take(page, "settings-connection")
    await page.get_by_text("Remove the connection").click()
    await page.get_by_label(re.compile("Stop pushing orders")).check()
    await page.get_by_role("button", name="Remove connection").click()
    await expect(page.get_by_role("status")).to_contain_text("Connection removed")


async def _tab_to(page: Page, element_id: str, most: int = 40) -> None:
    """Press Tab until the element has the focus, as a keyboard user would."""
    for _ in range(most):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with the Tab key")


async def test_keyboard_alone_signs_in_and_creates_a_key(page: Page, world: World) -> None:
    await page.goto(world.url("/account/login"))
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await _tab_to(page, "f-email")
    # The focus is visible.
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    await page.keyboard.type(world.owner_a.email)
    await page.keyboard.press("Tab")
    await page.keyboard.type(world.owner_a.password)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/account/stores/{world.store_a.store_id}/**")

    await page.goto(world.url(f"/account/stores/{world.store_a.store_id}/settings/keys"))
    await _tab_to(page, "f-label")
    await page.keyboard.type("Typed with the keyboard")
    await page.keyboard.press("Enter")
    await expect(page.get_by_label("Key", exact=True)).to_have_value(re.compile(r"^GL\."))
