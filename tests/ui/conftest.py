"""Merchant Account tests: HTTP through the ASGI app (the same app as the API), on both
databases. ``Browser`` keeps the session cookie and reads the CSRF token from each page, as
a browser would."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from orderbridge.accounts import service as accounts
from orderbridge.bootstrap import Container
from tests.conftest import StoreKeys

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Person:
    email: str
    user_id: str
    password: str = PASSWORD


async def make_user(
    container: Container,
    email: str,
    store_id: str | None,
    role: accounts.Role = accounts.Role.OWNER,
    time_zone: str = "Europe/Paris",
) -> Person:
    async with container.db.transaction() as session:
        now = container.clock.now()
        user = await accounts.create_user(
            session, email=email, password=PASSWORD, now=now, time_zone=time_zone
        )
        if store_id is not None:
            await accounts.add_membership(session, user=user, store_id=store_id, role=role, now=now)
    return Person(user.email, user.id)


class Browser:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.csrf: str | None = None

    def _remember(self, response: httpx.Response) -> None:
        found = _CSRF.search(response.text)
        if found:
            self.csrf = found.group(1)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.get(path, **kwargs)
        if response.headers.get("content-type", "").startswith("text/html"):
            self._remember(response)
        return response

    async def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True
    ) -> httpx.Response:
        if csrf and self.csrf is None:
            await self.get("/account/login")
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf
        response = await self.client.post(path, data=form)
        if response.headers.get("content-type", "").startswith("text/html"):
            self._remember(response)
        return response

    async def login(self, person: Person) -> httpx.Response:
        await self.get("/account/login")
        response = await self.post(
            "/account/login", {"email": person.email, "password": person.password}
        )
        assert response.status_code == 303, response.text
        await self.get(response.headers["location"], follow_redirects=True)
        return response


@pytest.fixture
def browser(client: httpx.AsyncClient) -> Browser:
    return Browser(client)


@pytest.fixture
async def owner(container: Container, store: StoreKeys) -> Person:
    return await make_user(container, "Owner@Example.com", store.store_id)


@pytest.fixture
async def staff(container: Container, store: StoreKeys) -> Person:
    return await make_user(container, "staff@example.com", store.store_id, accounts.Role.STAFF)
