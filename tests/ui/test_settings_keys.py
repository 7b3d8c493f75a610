"""Settings, API keys: created keys are shown once and work on the API, revoking asks
first and then the key is refused, bad input is shown next to its field; only owners."""

from __future__ import annotations

import re

import httpx

from orderbridge.bootstrap import Container
from tests.conftest import StoreKeys, create_store_with_keys
from tests.ui.conftest import Browser, Person

_NEW_KEY = re.compile(r'id="new-key"[^>]*value="([^"]+)"')


def keys_url(store_id: str) -> str:
    return f"/account/stores/{store_id}/settings/keys"


async def test_a_new_key_is_shown_once_and_works_on_the_api(
    browser: Browser, owner: Person, store: StoreKeys, client: httpx.AsyncClient
) -> None:
    await browser.login(owner)
    created = await browser.post(keys_url(store.store_id), {"kind": "merchant", "label": "ERP"})
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    found = _NEW_KEY.search(created.text)
    assert found, created.text
    secret = found.group(1)
    assert secret.startswith("GL.")
    events = await client.get(
        f"/v2/events/{store.store_id}", headers={"Authorization": f"Bearer {secret}"}
    )
    assert events.status_code == 200
    listing = await browser.get(keys_url(store.store_id))
    assert "ERP" in listing.text and secret[:10] in listing.text
    assert secret not in listing.text  # never shown again


async def test_revoking_asks_first_then_the_key_is_refused(
    browser: Browser, owner: Person, store: StoreKeys, client: httpx.AsyncClient
) -> None:
    await browser.login(owner)
    confirm = await browser.get(f"{keys_url(store.store_id)}/{store.merchant_key_id}/revoke")
    assert confirm.status_code == 200
    assert "Revoke the key" in confirm.text
    # Showing the confirmation changed nothing.
    assert (await client.get(f"/v2/events/{store.store_id}", headers=store.merchant)).is_success
    revoked = await browser.post(f"{keys_url(store.store_id)}/{store.merchant_key_id}/revoke")
    assert revoked.status_code == 303
    page = await browser.get(revoked.headers["location"])
    assert "revoked: requests with it are refused" in page.text
    refused = await client.get(f"/v2/events/{store.store_id}", headers=store.merchant)
    assert refused.status_code == 401


async def test_a_bad_label_is_shown_next_to_the_field_and_kept(
    browser: Browser, owner: Person, store: StoreKeys
) -> None:
    await browser.login(owner)
    label = "L" * 300
    response = await browser.post(keys_url(store.store_id), {"kind": "merchant", "label": label})
    assert response.status_code == 422
    assert 'id="e-label"' in response.text and "at most 255 characters" in response.text
    assert f'value="{label}"' in response.text
    wrong_kind = await browser.post(keys_url(store.store_id), {"kind": "admin", "label": "x"})
    assert wrong_kind.status_code == 422 and 'id="e-kind"' in wrong_kind.text


async def test_another_store_key_cannot_be_revoked(
    browser: Browser, owner: Person, store: StoreKeys, container: Container
) -> None:
    other = await create_store_with_keys(container, "Other shop")
    await browser.login(owner)
    path = f"{keys_url(store.store_id)}/{other.merchant_key_id}/revoke"
    assert (await browser.get(path)).status_code == 404
    assert (await browser.post(path)).status_code == 404
    other_store = await browser.get(keys_url(other.store_id))
    assert other_store.status_code == 404


async def test_staff_cannot_open_settings_and_see_no_link(
    browser: Browser, staff: Person, store: StoreKeys
) -> None:
    await browser.login(staff)
    assert (await browser.get(keys_url(store.store_id))).status_code == 403
    created = await browser.post(keys_url(store.store_id), {"kind": "merchant"})
    assert created.status_code == 403
    orders = await browser.get(f"/account/stores/{store.store_id}/orders")
    assert orders.status_code == 200
    assert "/settings" not in orders.text
    assert f"/account/stores/{store.store_id}/dashboard" in orders.text
