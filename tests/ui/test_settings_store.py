"""Settings, the store: processing options make a new configuration version (errors next
to their option, what was typed kept), the JSON editor, and the plug & play connection
with its failure policy and test (credentials never shown back)."""

from __future__ import annotations

import html

from orderbridge.bootstrap import Container
from orderbridge.processing import configs
from tests.conftest import StoreKeys
from tests.ui.conftest import Browser, Person

SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="


def settings_url(store_id: str) -> str:
    return f"/account/stores/{store_id}/settings"


def processing_form(**changes: str) -> dict[str, str]:
    form = {
        "payment.enabled": "yes",
        "payment.action_deadline_minutes": "30",
        "payment.deferred_deadline_hours": "72",
        "fraud.enabled": "yes",
        "fraud.rules.review_score": "30",
        "fraud.rules.reject_score": "70",
        "fraud.review_deadline_hours": "24",
        "fraud.on_review_deadline": "reject",
        "prohibited.enabled": "yes",
        "prohibited.digital_categories": "digital, gift_card, service",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v != ""}


async def test_saving_processing_options_makes_a_new_version(
    browser: Browser, owner: Person, store: StoreKeys, container: Container
) -> None:
    await browser.login(owner)
    page = await browser.get(settings_url(store.store_id))
    assert page.status_code == 200 and "Version 0" in page.text
    saved = await browser.post(
        f"{settings_url(store.store_id)}/processing",
        processing_form(
            **{
                "fraud.rules.review_score": "40",
                "prohibited.enabled": "",
                "prohibited.screen_domestic": "yes",
                "prohibited.digital_categories": "ebook, service",
            }
        ),
    )
    assert saved.status_code == 303
    async with container.db.reader() as session:
        version, config = await configs.current(session, store.store_id)
    assert version == 1
    assert config.fraud.rules.review_score == 40
    assert not config.prohibited.enabled and config.prohibited.screen_domestic
    assert config.prohibited.digital_categories == ("ebook", "service")
    assert config.payment.action_deadline_minutes == 30
    shown = await browser.get(saved.headers["location"])
    assert "saved as version 1" in shown.text
    assert 'value="40"' in shown.text
    again = await browser.post(
        f"{settings_url(store.store_id)}/processing",
        processing_form(
            **{
                "fraud.rules.review_score": "40",
                "prohibited.enabled": "",
                "prohibited.screen_domestic": "yes",
                "prohibited.digital_categories": "ebook, service",
            }
        ),
    )
    assert "Nothing changed." in (await browser.get(again.headers["location"])).text


async def test_bad_processing_options_are_shown_next_to_each_and_kept(
    browser: Browser, owner: Person, store: StoreKeys, container: Container
) -> None:
    await browser.login(owner)
    response = await browser.post(
        f"{settings_url(store.store_id)}/processing",
        processing_form(
            **{"payment.action_deadline_minutes": "soon", "fraud.rules.review_score": "90"}
        ),
    )
    assert response.status_code == 422
    assert 'id="e-payment.action_deadline_minutes"' in response.text
    assert 'value="soon"' in response.text
    # reject_score must exceed review_score: said next to the reject score.
    assert 'id="e-fraud.rules.reject_score"' in response.text
    assert 'value="90"' in response.text
    async with container.db.reader() as session:
        assert (await configs.current(session, store.store_id))[0] == 0


async def test_the_json_editor_saves_everything_or_says_what_is_wrong(
    browser: Browser, owner: Person, store: StoreKeys, container: Container
) -> None:
    await browser.login(owner)
    url = f"{settings_url(store.store_id)}/processing/json"
    broken = await browser.post(url, {"config": '{"fraud": '})
    assert broken.status_code == 422
    assert "not valid JSON" in broken.text and '{"fraud": ' in html.unescape(broken.text)
    wrong = await browser.post(url, {"config": '{"fraud": {"enabled": "maybe"}}'})
    assert wrong.status_code == 422 and "fraud.enabled" in wrong.text
    ok = await browser.post(url, {"config": '{"fraud": {"enabled": false}}'})
    assert ok.status_code == 303
    async with container.db.reader() as session:
        version, config = await configs.current(session, store.store_id)
    assert version == 1 and not config.fraud.enabled


async def test_connection_is_saved_tested_and_its_secret_never_shown(
    browser: Browser, owner: Person, store: StoreKeys, container: Container
) -> None:
    await browser.login(owner)
    base = settings_url(store.store_id)
    chooser = await browser.get(f"{base}?platform=custom")
    assert 'name="credentials.signing_secret"' in chooser.text
    missing = await browser.post(
        f"{base}/connection",
        {"platform": "custom", "base_url": "", "failure_policy": "notify", "max_attempts": "x"},
    )
    assert missing.status_code == 422
    for name in ("base_url", "max_attempts"):
        assert f'id="e-{name}"' in missing.text, name
    form = {
        "platform": "custom",
        "base_url": "http://127.0.0.1:9/orders",
        "credentials.signing_secret": SECRET,
        "failure_policy": "cancel",
        "max_attempts": "3",
        "retry_delays": "10, 20",
        "currency_mode": "base",
        "timeout": "5",
        "enabled": "yes",
    }
    saved = await browser.post(f"{base}/connection", form)
    assert saved.status_code == 303, saved.text
    async with container.db.reader() as session:
        connection = await container.connections.get(session, store.store_id)
    assert (connection.failure_policy, connection.max_attempts) == ("cancel", 3)
    assert connection.retry_schedule == {"delays": [10, 20]}
    page = await browser.get(base)
    assert SECRET not in page.text and "stored: leave empty to keep it" in page.text

    # Saving again without the secret keeps the stored one.
    form.pop("credentials.signing_secret")
    assert (await browser.post(f"{base}/connection", {**form, "max_attempts": "4"})).is_redirect
    async with container.db.reader() as session:
        kept = await container.connections.get(session, store.store_id)
    assert container.connections.credentials_of(kept) == {"signing_secret": SECRET}

    # Nothing listens on port 9: the test says so and keeps the result.
    tested = await browser.post(f"{base}/connection/test")
    assert tested.status_code == 303
    shown = await browser.get(tested.headers["location"])
    assert "Connection test failed" in shown.text
    assert "failed</span>" in shown.text

    unconfirmed = await browser.post(f"{base}/connection/delete", {})
    assert "Tick the box" in (await browser.get(unconfirmed.headers["location"])).text
    removed = await browser.post(f"{base}/connection/delete", {"confirm": "yes"})
    assert removed.status_code == 303
    async with container.db.reader() as session:
        assert await container.connections.find(session, store.store_id) is None


async def test_staff_cannot_change_store_settings(
    browser: Browser, staff: Person, store: StoreKeys
) -> None:
    await browser.login(staff)
    base = settings_url(store.store_id)
    assert (await browser.get(base)).status_code == 403
    assert (await browser.post(f"{base}/processing", processing_form())).status_code == 403
    assert (await browser.post(f"{base}/connection/test")).status_code == 403
