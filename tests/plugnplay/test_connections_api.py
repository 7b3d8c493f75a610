"""A store's connection through the API: credentials never come back, what is checked when it
is saved, testing it, deleting it, and store scoping."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orderbridge.clock import FrozenClock
from orderbridge.connectors.connections import ConnectionService
from orderbridge.connectors.pool import ConnectorPool
from orderbridge.connectors.registry import default_registry
from orderbridge.connectors.schemas import ConnectionIn
from orderbridge.crypto import SecretBox
from orderbridge.db.models import StoreConnection
from orderbridge.errors import ValidationFailed
from orderbridge.outbound.guard import OutboundPolicy
from orderbridge.outbound.signing import generate_secret
from tests.conftest import create_store_with_keys
from tests.plugnplay.conftest import PlugAndPlay

pytestmark = pytest.mark.timeout(60)


async def test_a_new_connection_is_created_and_never_shows_its_credentials(
    pnp: PlugAndPlay,
) -> None:
    response = await pnp.put_connection()

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["credentials_set"] == ["signing_secret"]
    assert pnp.endpoint.secret not in response.text
    assert (body["failure_policy"], body["currency_mode"], body["max_attempts"]) == (
        "notify",
        "base",
        5,
    )
    assert body["retry_delays"] == [60, 300, 900, 2400]
    fetched = await pnp.client.get(f"/v2/connections/{pnp.store_id}", headers=pnp.headers)
    assert fetched.status_code == 200
    assert pnp.endpoint.secret not in fetched.text
    assert fetched.json() == body


async def test_credentials_are_encrypted_at_rest(pnp: PlugAndPlay) -> None:
    await pnp.connect()

    async with pnp.container.db.reader() as session:
        stored = await session.scalar(select(StoreConnection.credentials_encrypted))
    assert stored is not None
    assert pnp.endpoint.secret not in stored


async def test_replacing_without_credentials_keeps_the_stored_ones(pnp: PlugAndPlay) -> None:
    await pnp.connect()

    response = await pnp.put_connection(credentials={}, failure_policy="cancel")

    assert response.status_code == 200, response.text
    assert response.json()["failure_policy"] == "cancel"
    assert response.json()["credentials_set"] == ["signing_secret"]
    tested = await pnp.client.post(f"/v2/connections/{pnp.store_id}/test", headers=pnp.headers)
    assert tested.json()["last_test"]["ok"] is True


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"platform": "nosuchplatform"}, "platform", "unknown_platform"),
        ({"credentials": {"signing_secret": "plain"}}, "credentials", "invalid"),
        ({"credentials": {"signing_secret": "", "extra": "x"}}, "credentials.extra", None),
        ({"options": {"colour": "red"}}, "options.colour", "unknown_field"),
        ({"base_url": "ftp://example.com/orders"}, "base_url", "scheme_not_allowed"),
        ({"failure_policy": "ignore"}, "failure_policy", None),
        ({"max_attempts": 0}, "max_attempts", None),
        ({"retry_delays": []}, "retry_delays", None),
    ],
)
async def test_an_invalid_connection_is_refused_with_the_field(
    pnp: PlugAndPlay, changes: dict[str, object], field: str, code: str | None
) -> None:
    response = await pnp.put_connection(**changes)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert any(e["field"] == field for e in errors), errors
    if code is not None:
        assert any(e["code"] == code for e in errors if e["field"] == field), errors


async def test_a_plain_http_or_private_url_is_refused_in_production(clock: FrozenClock) -> None:
    registry = default_registry()
    policy = OutboundPolicy()  # the production policy
    service = ConnectionService(
        clock, SecretBox(["k"]), policy, registry, ConnectorPool(registry, policy)
    )
    secret = generate_secret()
    for url, code in [
        ("http://shop.example/orders", "scheme_not_allowed"),
        ("https://127.0.0.1/orders", "target_not_public"),
        ("https://user:pw@shop.example/orders", "credentials_in_url"),
    ]:
        spec = ConnectionIn(platform="custom", base_url=url, credentials={"signing_secret": secret})
        with pytest.raises(ValidationFailed) as refused:
            await service._check(spec, dict(spec.credentials))
        assert [(e.path, e.code) for e in refused.value.errors] == [("base_url", code)]


async def test_testing_the_connection_keeps_the_result(pnp: PlugAndPlay) -> None:
    await pnp.connect()

    good = await pnp.client.post(f"/v2/connections/{pnp.store_id}/test", headers=pnp.headers)
    await pnp.connect(credentials={"signing_secret": generate_secret()})
    bad = await pnp.client.post(f"/v2/connections/{pnp.store_id}/test", headers=pnp.headers)

    assert good.status_code == bad.status_code == 200
    assert good.json()["last_test"]["ok"] is True
    assert (bad.json()["last_test"]["ok"], bad.json()["last_test"]["code"]) == (
        False,
        "auth_failed",
    )
    fetched = await pnp.client.get(f"/v2/connections/{pnp.store_id}", headers=pnp.headers)
    assert fetched.json()["last_test"] == bad.json()["last_test"]


async def test_a_deleted_connection_is_gone_and_new_orders_wait_for_the_merchant(
    pnp: PlugAndPlay,
) -> None:
    await pnp.connect()

    deleted = await pnp.client.delete(f"/v2/connections/{pnp.store_id}", headers=pnp.headers)
    again = await pnp.client.delete(f"/v2/connections/{pnp.store_id}", headers=pnp.headers)
    fetched = await pnp.client.get(f"/v2/connections/{pnp.store_id}", headers=pnp.headers)
    order = await pnp.ready()

    assert deleted.status_code == 204
    assert (again.status_code, again.json()["code"]) == (404, "no_connection")
    assert (fetched.status_code, fetched.json()["code"]) == (404, "no_connection")
    assert order["status"] == "READY"
    assert pnp.endpoint.requests == []


async def test_another_stores_key_sees_no_connection(pnp: PlugAndPlay) -> None:
    await pnp.connect()
    other = await create_store_with_keys(pnp.container, "Other")

    response = await pnp.client.get(f"/v2/connections/{pnp.store_id}", headers=other.merchant)
    put = await pnp.client.put(
        f"/v2/connections/{pnp.store_id}", json=pnp.connection_body(), headers=other.merchant
    )

    assert response.status_code == put.status_code == 404


async def test_the_platforms_list_names_each_connectors_fields(pnp: PlugAndPlay) -> None:
    response = await pnp.client.get(
        f"/v2/connections/{pnp.store_id}/platforms", headers=pnp.headers
    )

    assert response.status_code == 200
    platforms = {p["platform"]: p for p in response.json()}
    assert platforms["custom"]["credential_fields"] == ["signing_secret"]
