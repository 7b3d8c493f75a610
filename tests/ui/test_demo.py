"""The README's demo gives a newcomer a Merchant Account they can sign in to."""

from __future__ import annotations

import json
from pathlib import Path

from orderbridge.bootstrap import Container
from orderbridge.demo import ensure_demo_store, submit_demo_order
from tests.ui.conftest import Browser, Person


async def test_demo_prints_credentials_that_open_its_store(
    container: Container, browser: Browser, tmp_path: Path
) -> None:
    import random

    state = await ensure_demo_store(container, tmp_path / "demo.json")
    order_id = await submit_demo_order(container, state["store_id"], random.Random(3))
    demo = Person(state["user_email"], "", state["user_password"])
    await browser.login(demo)
    page = await browser.get(f"/account/stores/{state['store_id']}/orders")
    assert page.status_code == 200
    assert order_id in page.text
    again = await ensure_demo_store(container, tmp_path / "demo.json")
    assert again == state  # a second start keeps the same store, user and password


async def test_a_demo_folder_from_before_accounts_gets_its_user(
    container: Container, tmp_path: Path
) -> None:
    state = await ensure_demo_store(container, tmp_path / "demo.json")
    old = {k: v for k, v in state.items() if not k.startswith("user_")}
    (tmp_path / "old.json").write_text(json.dumps(old))
    upgraded = await ensure_demo_store(container, tmp_path / "old.json")
    assert upgraded["user_email"] == "demo@example.com"
    assert json.loads((tmp_path / "old.json").read_text())["user_password"]
