"""``orderbridge users …``: an operator makes the users who sign in to the Merchant Account
(run in a thread: each command runs its own event loop, as it does from a terminal)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from orderbridge.bootstrap import Container
from orderbridge.cli.main import main
from orderbridge.settings import Settings
from tests.conftest import StoreKeys, create_store_with_keys
from tests.ui.conftest import Browser, Person

pytestmark = pytest.mark.timeout(60)


async def _run(settings: Settings, *args: str, stdin: str | None = None) -> Result:
    env = {
        "ORDERBRIDGE_DATABASE_URL": settings.database_url or "",
        "ORDERBRIDGE_DATA_DIR": str(settings.data_dir),
        "ORDERBRIDGE_SECRET_KEYS": "test-key",
        "ORDERBRIDGE_WORKER_MODE": "off",
    }
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), input=stdin, env=env)


async def test_create_with_a_prompted_password_then_sign_in(
    settings: Settings, store: StoreKeys, browser: Browser
) -> None:
    secret = "typed at the prompt"
    result = await _run(
        settings,
        "users", "create", "--email", "Ann@Example.com", "--store", store.store_id,
        "--role", "staff", "--time-zone", "Europe/Berlin", "--json",
        stdin=f"{secret}\n{secret}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output[result.output.index("{") :])
    assert data["email"] == "ann@example.com"
    assert data["stores"] == [{"store_id": store.store_id, "role": "staff"}]
    assert secret not in result.output  # the prompt hides it, the output never shows it
    await browser.login(Person("ann@example.com", data["id"], secret))
    page = await browser.get(f"/account/stores/{store.store_id}/orders")
    assert page.status_code == 200


async def test_bad_input_and_duplicates_are_refused_with_the_reason(
    settings: Settings, store: StoreKeys
) -> None:
    common = ["users", "create", "--store", store.store_id, "--password", "long enough pw"]
    bad = await _run(settings, *common, "--email", "not-an-email", "--time-zone", "Nowhere")
    assert bad.exit_code != 0
    assert "email" in bad.output and "time_zone" in bad.output
    ok = await _run(settings, *common, "--email", "bob@example.com")
    assert ok.exit_code == 0, ok.output
    again = await _run(settings, *common, "--email", "BOB@example.com")
    assert again.exit_code != 0 and "email_taken" in again.output
    missing = await _run(
        settings, "users", "create", "--email", "c@example.com", "--store", "999999",
        "--password", "long enough pw",
    )  # fmt: skip
    assert missing.exit_code != 0 and "store_not_found" in missing.output


async def test_add_store_list_and_disable(
    settings: Settings, store: StoreKeys, container: Container
) -> None:
    other = await create_store_with_keys(container, "Second")
    created = await _run(
        settings, "users", "create", "--email", "d@example.com", "--store", store.store_id,
        "--password", "long enough pw",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    added = await _run(
        settings, "users", "add-store", "--email", "d@example.com", "--store", other.store_id,
        "--role", "staff",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = json.loads((await _run(settings, "users", "list", "--json")).output)
    assert {(s["store_id"], s["role"]) for s in listed[0]["stores"]} == {
        (store.store_id, "owner"),
        (other.store_id, "staff"),
    }
    assert (await _run(settings, "users", "disable", "--email", "d@example.com")).exit_code == 0
    listed = json.loads((await _run(settings, "users", "list", "--json")).output)
    assert listed[0]["disabled"] is True
