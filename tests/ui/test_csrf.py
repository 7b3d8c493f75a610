"""No form action works without the session's CSRF token: every POST route of the Merchant
Account is enumerated from ``ui.app.ROUTERS``, so a new form cannot forget the check."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from orderbridge.ui.app import ROUTERS
from tests.conftest import Api
from tests.ui.conftest import Browser, Person


def post_routes() -> list[str]:
    paths = sorted(
        {
            route.path
            for router in ROUTERS
            for route in router.routes
            if isinstance(route, APIRoute) and route.methods & {"POST", "PUT", "PATCH", "DELETE"}
        }
    )
    assert len(paths) >= 7  # login, logout, profile, password, accept, cancel, refund, ...
    return paths


def _fill(path: str, values: dict[str, str]) -> str:
    return "/account" + re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), path)


async def test_every_post_route_rejects_a_missing_or_wrong_token(
    api: Api, browser: Browser, owner: Person, order_payload: dict[str, Any]
) -> None:
    order = await api.ready_order(order_payload)
    await browser.login(owner)
    values = {"store_id": api.keys.store_id, "order_id": order["id"]}
    for path in post_routes():
        url = _fill(path, values)
        missing = await browser.post(url, {"confirm": "yes"}, csrf=False)
        assert missing.status_code == 403, url
        assert "The form expired" in missing.text, url
        forged = await browser.client.post(url, data={"csrf_token": "forged", "confirm": "yes"})
        assert forged.status_code == 403, url
        header = await browser.client.post(url, headers={"X-CSRF-Token": "forged"})
        assert header.status_code == 403, url
    # Nothing happened: still signed in, the order untouched.
    assert (await browser.get("/account/profile")).status_code == 200
    assert (await api.get(order["id"]))["status"] == "READY"


async def test_a_token_from_another_session_is_refused(
    client: httpx.AsyncClient, browser: Browser, owner: Person, api: Api
) -> None:
    await browser.login(owner)
    stranger = Browser(httpx.AsyncClient(transport=client._transport, base_url="http://test"))
    await stranger.get("/account/login")
    assert stranger.csrf and stranger.csrf != browser.csrf
    response = await browser.client.post(
        "/account/logout", data={"csrf_token": stranger.csrf or ""}
    )
    assert response.status_code == 403
    await stranger.client.aclose()


@pytest.mark.parametrize("route", ["/account/login", "/account/logout"])
async def test_sign_in_and_out_need_the_token_too(browser: Browser, route: str) -> None:
    assert (await browser.post(route, {}, csrf=False)).status_code == 403
