"""Malformed links and query strings on the settings pages get a page, never a 500: NUL
bytes (which PostgreSQL refuses in text), numbers past 64 bits, unknown filter values."""

from __future__ import annotations

import pytest

from tests.conftest import StoreKeys
from tests.ui.conftest import Browser, Person

ODD = ["%00", "x%00y", "99999999999999999999999", "-1", "%F0%9F%92%A9", "a" * 40]


@pytest.mark.parametrize("odd", ODD)
async def test_odd_ids_and_filters_get_a_page_not_an_error(
    browser: Browser, owner: Person, store: StoreKeys, odd: str
) -> None:
    await browser.login(owner)
    base = f"/account/stores/{store.store_id}/settings"
    endpoint = f"{base}/webhooks/{odd}"
    for path in (
        f"{base}/keys/{odd}/revoke",
        endpoint,
        f"{endpoint}/deliveries/{odd}",
        f"{endpoint}/deliveries/1",
        f"{base}/webhooks/we_1?status={odd}&before={odd}",
        f"{base}?platform={odd}",
        f"/account/stores/{store.store_id}/dashboard?x={odd}",
    ):
        response = await browser.get(path)
        assert response.status_code in (200, 400, 404), (path, response.status_code)
    for path in (f"{base}/keys/{odd}/revoke", f"{endpoint}/secret", f"{endpoint}/rotate"):
        response = await browser.post(path)
        assert response.status_code in (400, 404), (path, response.status_code)


async def test_nul_bytes_in_every_settings_form_are_refused_next_to_a_field(
    browser: Browser, owner: Person, store: StoreKeys
) -> None:
    await browser.login(owner)
    base = f"/account/stores/{store.store_id}/settings"
    nul = "a\x00b"
    forms = {
        f"{base}/keys": {"kind": nul, "label": nul},
        f"{base}/webhooks/new": {"url": nul, "description": nul, "events": nul},
        f"{base}/processing": {
            "fraud.rules.review_score": nul,
            "prohibited.digital_categories": nul,
        },
        f"{base}/processing/json": {"config": '{"fraud": {"enabled": "\\u0000"}}'},
        f"{base}/connection": {"platform": nul, "base_url": nul, "max_attempts": nul},
    }
    for path, form in forms.items():
        response = await browser.post(path, form)
        assert response.status_code == 422, (path, response.status_code)
        assert 'class="error' in response.text, path
