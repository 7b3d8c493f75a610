"""The harness itself: the browser reaches the running service."""

from __future__ import annotations

from playwright.async_api import Page

from tests.browser.conftest import World


async def test_browser_reaches_the_running_service(page: Page, world: World) -> None:
    response = await page.goto(world.url("/healthz"))
    assert response is not None and response.status == 200
    assert '"ok"' in await page.content()
