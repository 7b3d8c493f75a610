"""Signing in and out, sessions, password change: the Merchant Account's front door."""

from __future__ import annotations

import httpx

from orderbridge.accounts import service as accounts
from orderbridge.bootstrap import Container
from tests.conftest import StoreKeys
from tests.ui.conftest import PASSWORD, Browser, Person, make_user


async def test_pages_redirect_to_sign_in_and_back_after_it(
    browser: Browser, owner: Person, store: StoreKeys
) -> None:
    page = f"/account/stores/{store.store_id}"
    response = await browser.get(page)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/account/login?next=")
    await browser.get(response.headers["location"])
    signed = await browser.post(
        "/account/login",
        {"email": "OWNER@example.com", "password": PASSWORD, "next": page},
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == page


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    browser: Browser, owner: Person
) -> None:
    wrong = await browser.post("/account/login", {"email": owner.email, "password": "nope" * 3})
    unknown = await browser.post(
        "/account/login", {"email": "nobody@example.com", "password": "nope" * 3}
    )
    assert wrong.status_code == unknown.status_code == 422
    assert "The email or the password is wrong." in wrong.text
    assert "The email or the password is wrong." in unknown.text
    assert f'value="{owner.email}"' in wrong.text  # the email is kept, the password never
    assert "nopenope" not in wrong.text


async def test_repeated_failures_are_throttled_even_with_the_right_password(
    browser: Browser, owner: Person
) -> None:
    for _ in range(10):
        await browser.post("/account/login", {"email": owner.email, "password": "x" * 12})
    response = await browser.post("/account/login", {"email": owner.email, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed attempts" in response.text


async def test_empty_fields_get_a_message_next_to_each(browser: Browser) -> None:
    response = await browser.post("/account/login", {"email": "", "password": ""})
    assert response.status_code == 422
    assert 'id="e-email"' in response.text and 'id="e-password"' in response.text


async def test_open_redirect_after_sign_in_is_refused(browser: Browser, owner: Person) -> None:
    await browser.get("/account/login")
    response = await browser.post(
        "/account/login",
        {"email": owner.email, "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response.headers["location"] == "/account/"


async def test_sign_out_ends_the_session(browser: Browser, owner: Person, store: StoreKeys) -> None:
    await browser.login(owner)
    assert (await browser.get(f"/account/stores/{store.store_id}")).status_code in (200, 303)
    out = await browser.post("/account/logout")
    assert out.status_code == 303
    response = await browser.get("/account/profile")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/account/login")


async def test_disabled_user_cannot_sign_in_and_is_signed_out(
    browser: Browser, owner: Person, container: Container
) -> None:
    await browser.login(owner)
    async with container.db.transaction() as session:
        user = await accounts.get_user(session, owner.email)
        await accounts.set_disabled(session, user=user, disabled=True, now=container.clock.now())
    assert (await browser.get("/account/profile")).status_code == 303
    await browser.get("/account/login")  # the ended session's form token went with it
    again = await browser.post("/account/login", {"email": owner.email, "password": PASSWORD})
    assert again.status_code == 422


async def test_password_change_checks_the_current_one_and_ends_other_sessions(
    browser: Browser, client: httpx.AsyncClient, owner: Person
) -> None:
    other = Browser(httpx.AsyncClient(transport=client._transport, base_url="http://test"))
    await browser.login(owner)
    await other.login(owner)
    bad = await browser.post(
        "/account/profile/password",
        {"current_password": "wrong-one-1", "new_password": "short", "confirm_password": ""},
    )
    assert bad.status_code == 422
    assert "this is not your current password" in bad.text
    assert "at least 10 characters" in bad.text
    new = "a much longer passphrase"
    ok = await browser.post(
        "/account/profile/password",
        {"current_password": PASSWORD, "new_password": new, "confirm_password": new},
    )
    assert ok.status_code == 303
    assert (await browser.get("/account/profile")).status_code == 200
    assert (await other.get("/account/profile")).status_code == 303
    await other.client.aclose()


async def test_profile_time_zone_is_validated_and_kept(browser: Browser, owner: Person) -> None:
    await browser.login(owner)
    bad = await browser.post(
        "/account/profile", {"name": "Ann", "time_zone": "Mars/Olympus", "locale": "en"}
    )
    assert bad.status_code == 422
    assert "not a known time zone" in bad.text
    assert 'value="Mars/Olympus"' in bad.text
    ok = await browser.post(
        "/account/profile", {"name": "Ann", "time_zone": "Asia/Tokyo", "locale": "fr_FR"}
    )
    assert ok.status_code == 303
    page = await browser.get("/account/profile")
    assert "Times in Asia/Tokyo" in page.text


async def test_a_store_you_do_not_belong_to_is_not_found(
    browser: Browser, container: Container, owner: Person
) -> None:
    from tests.conftest import create_store_with_keys

    other = await create_store_with_keys(container, "Other shop")
    await browser.login(owner)
    response = await browser.get(f"/account/stores/{other.store_id}")
    assert response.status_code == 404
    assert (await browser.get("/account/stores/999999")).status_code == 404


async def test_emails_are_unique_whatever_their_case(container: Container) -> None:
    import pytest

    from orderbridge.accounts.service import EmailTaken

    await make_user(container, "Same@Example.com", None)
    with pytest.raises(EmailTaken):
        await make_user(container, "same@example.COM", None)


async def test_account_pages_are_not_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/account") or p == "/"]


async def test_owner_pages_refuse_staff_and_admit_owners(
    container: Container, staff: Person, owner: Person, store: StoreKeys
) -> None:
    import pytest

    from orderbridge.errors import Forbidden
    from orderbridge.ui.deps import SignedIn, StoreContext, _owner_access

    async with container.db.reader() as session:
        for person, allowed in ((owner, True), (staff, False)):
            user = await accounts.get_user(session, person.email)
            viewer = SignedIn(user, await accounts.memberships(session, user.id))
            membership = viewer.membership(store.store_id)
            assert membership is not None
            context = StoreContext(viewer, membership)
            if allowed:
                assert await _owner_access(context) is context
            else:
                with pytest.raises(Forbidden):
                    await _owner_access(context)


def test_a_shared_address_is_throttled_much_later_than_one_email() -> None:
    from orderbridge.accounts.throttle import LoginThrottle
    from orderbridge.clock import FrozenClock

    clock = FrozenClock()
    throttle = LoginThrottle(clock, per_email=3, per_address=5)
    for _ in range(3):
        throttle.failed("a@example.com", "10.0.0.1")
    assert throttle.blocked("a@example.com", "10.0.0.2")  # that email, from anywhere
    assert not throttle.blocked("b@example.com", "10.0.0.1")  # others behind the same proxy
    for n in range(2):
        throttle.failed(f"x{n}@example.com", "10.0.0.1")
    assert throttle.blocked("b@example.com", "10.0.0.1")  # one machine trying many emails
    clock.advance(minutes=15)
    assert not throttle.blocked("a@example.com", "10.0.0.1")  # the window has passed


async def test_a_user_of_several_stores_picks_one_and_sees_only_those(
    browser: Browser, container: Container, owner: Person, store: StoreKeys
) -> None:
    from tests.conftest import create_store_with_keys

    second = await create_store_with_keys(container, "Second shop")
    unrelated = await create_store_with_keys(container, "Not yours")
    async with container.db.transaction() as session:
        user = await accounts.get_user(session, owner.email)
        await accounts.add_membership(
            session,
            user=user,
            store_id=second.store_id,
            role=accounts.Role.STAFF,
            now=container.clock.now(),
        )
    await browser.login(owner)
    home = await browser.get("/account/")
    assert home.status_code == 200
    assert "Second shop" in home.text and "Shop" in home.text
    assert "Not yours" not in home.text and unrelated.store_id not in home.text
    picked = await browser.get(f"/account/stores/{second.store_id}")
    assert picked.headers["location"] == f"/account/stores/{second.store_id}/orders"
    orders = await browser.get(picked.headers["location"])
    assert orders.status_code == 200
    assert f"/account/stores/{store.store_id}" in orders.text  # the switcher offers the other
