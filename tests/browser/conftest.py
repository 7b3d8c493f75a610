"""One service, one browser and the seeded stores for all the browser tests (package
scope: they stop once these tests are done rather than at the end of the session); a
fresh browser context per test. A missing browser skips these tests on a developer's
machine and fails them in CI (ORDERBRIDGE_REQUIRE_POSTGRES set, as ``.ci/run`` does)."""

from __future__ import annotations

import os
import random
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from orderbridge.accounts.service import Role
from orderbridge.bootstrap import Container, build
from orderbridge.settings import Settings, WorkerMode
from tests.browser import seed, service
from tests.support import databases

# scripts/install-browser puts Debian's Chromium there; another path for other systems.
CHROMIUM = Path(os.environ.get("ORDERBRIDGE_TEST_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium's own connections (updates, sync, field
# trials) are refused by the closed network and slow every start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 860}
PHONE_DEVICE = "Pixel 7"

try:
    from playwright.async_api import (
        Browser,
        BrowserContext,
        Page,
        Playwright,
        async_playwright,
        expect,
    )
except ImportError:  # pragma: no cover - the test extras install it
    async_playwright = None  # type: ignore[assignment]


def _browser_missing() -> str | None:
    if async_playwright is None:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: run scripts/install-browser"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every browser test shares the package's event loop, where the browser lives.
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.asyncio(loop_scope="package"), append=False)


@pytest.fixture(scope="package")
def _browser_available() -> None:
    if async_playwright is not None:
        # CI runs everything on two shared cores: assertions wait up to 15 s, not 5.
        expect.set_options(timeout=15_000)
    reason = _browser_missing()
    if reason is None:
        return
    if databases.REQUIRED:
        pytest.fail(f"browser tests must run in CI but {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class World:
    """What the session starts from: the running service and two stores."""

    base_url: str
    store_a: seed.SeededStore
    store_b: seed.SeededStore
    owner_a: seed.SeededUser
    staff_a: seed.SeededUser
    owner_b: seed.SeededUser
    orders: seed.Orders
    container: Container
    log: service.RunningService

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture(scope="package")
def _service(
    _browser_available: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[service.RunningService]:
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    data_dir.mkdir()
    databases.migrated_sqlite(data_dir)
    with service.running(data_dir, service.new_secret_keys()) as running:
        yield running


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def world(_service: service.RunningService) -> AsyncIterator[World]:
    settings = Settings(
        data_dir=_service.data_dir,
        worker_mode=WorkerMode.OFF,
        secret_keys=_service.secret_keys,
    )
    container = build(settings)
    orders = seed.Orders(_service.base_url, random.Random(6))
    try:
        store_a = await seed.store_with_keys(container, "Atelier Alpha")
        store_b = await seed.store_with_keys(container, "Boutique Beta")
        owner_a = await seed.user(container, "owner@alpha.example", store_a, Role.OWNER)
        staff_a = await seed.user(container, "staff@alpha.example", store_a, Role.STAFF)
        owner_b = await seed.user(container, "owner@beta.example", store_b, Role.OWNER)
        yield World(
            _service.base_url,
            store_a,
            store_b,
            owner_a,
            staff_a,
            owner_b,
            orders,
            container,
            _service,
        )
    finally:
        await orders.close()
        await container.close()


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def _playwright(_browser_available: None) -> AsyncIterator[Playwright]:
    assert async_playwright is not None
    async with async_playwright() as playwright:
        yield playwright


@pytest_asyncio.fixture(scope="package", loop_scope="package")
async def browser(_playwright: Playwright) -> AsyncIterator[Browser]:
    launched = await _playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield launched
    await launched.close()


@pytest_asyncio.fixture(loop_scope="package")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    context = await browser.new_context(viewport=DESKTOP, locale="en-GB")
    context.set_default_timeout(15_000)
    try:
        yield context
    finally:
        await context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed browser test carries the end of the server's log in its report, and its
    outcome is kept on the item for the ``page`` fixture's failure screenshot."""
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
        world = getattr(item, "funcargs", {}).get("world")
        if report.failed and isinstance(world, World):
            report.sections.append(("server log (end)", world.log.log_tail()))
    return report


_FAILED = pytest.StashKey[bool]()


@pytest_asyncio.fixture(loop_scope="package")
async def page(context: BrowserContext, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    page = await context.new_page()
    yield page
    if request.node.stash.get(_FAILED, False):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
        await page.screenshot(path=str(SCREENSHOTS / f"failed-{name}.png"), full_page=True)


async def sign_in(page: Page, world: World, user: seed.SeededUser) -> None:
    """Through the sign-in form, as a merchant would."""
    await page.goto(world.url("/account/login"))
    await page.get_by_label("Email").fill(user.email)
    await page.get_by_label("Password").fill(user.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**/account/stores/{user.store_id}/**")


@pytest_asyncio.fixture(loop_scope="package")
async def owner_page(page: Page, world: World) -> Page:
    """A page signed in as the owner of store A."""
    await sign_in(page, world, world.owner_a)
    return page


class Screenshots:
    """Saves a page at the desktop size and again at a phone's, logged in the same way."""

    def __init__(self, browser: Browser, phone: dict[str, Any]) -> None:
        self.browser = browser
        self.phone = phone
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async def take(self, page: Page, name: str) -> list[Path]:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        desktop = SCREENSHOTS / f"{slug}-desktop.png"
        await page.screenshot(path=str(desktop), full_page=True)
        state = await page.context.storage_state()
        phone_context = await self.browser.new_context(storage_state=state, **self.phone)
        try:
            phone_page = await phone_context.new_page()
            await phone_page.goto(page.url)
            phone = SCREENSHOTS / f"{slug}-phone.png"
            await phone_page.screenshot(path=str(phone), full_page=True)
        finally:
            await phone_context.close()
        return [desktop, phone]


@pytest_asyncio.fixture(loop_scope="package")
async def screenshots(browser: Browser, _playwright: Playwright) -> Screenshots:
    return Screenshots(browser, dict(_playwright.devices[PHONE_DEVICE]))
