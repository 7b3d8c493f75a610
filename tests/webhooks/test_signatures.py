"""Every delivered request verifies with the third-party verifiers (``standardwebhooks``
and ``svix``), before, during and after a secret rotation. The rotation's overlap ends by
moving the frozen clock."""

from __future__ import annotations

import pytest

from orderbridge.clock import FrozenClock
from tests.conftest import Api
from tests.webhooks.helpers import (
    accepted_by,
    call,
    create_endpoint,
    dispatcher,
    only_delivery,
    receive_orders,
)
from tests.webhooks.receiver import receiver

pytestmark = pytest.mark.timeout(60)


async def test_during_the_overlap_both_secrets_sign_and_after_it_only_the_new_one(
    api: Api, clock: FrozenClock
) -> None:
    async with receiver() as hooks:
        endpoint = await create_endpoint(api, hooks.url)
        old = endpoint["secret"]
        await receive_orders(api.container, api.keys.store_id, 1, seed=1)
        assert await dispatcher(api.container).run_until_idle() == 1

        rotated = await call(
            api, "POST", f"/{endpoint['id']}/secret/rotate", json={"overlap_hours": 1}
        )
        new = rotated["secrets"][0]["secret"]
        assert [s["secret"] for s in rotated["secrets"]] == [new, old]
        await receive_orders(api.container, api.keys.store_id, 1, seed=2)
        assert await dispatcher(api.container).run_until_idle() == 1

        clock.advance(hours=1, seconds=1)
        revealed = await call(api, "POST", f"/{endpoint['id']}/secret/reveal")
        assert [s["secret"] for s in revealed["secrets"]] == [new]
        await receive_orders(api.container, api.keys.store_id, 1, seed=3)
        assert await dispatcher(api.container).run_until_idle() == 1

    before, during, after = hooks.requests
    assert accepted_by([old, new], before) == [True, False]
    assert accepted_by([old, new], during) == [True, True]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert accepted_by([old, new], after) == [False, True]
    assert len(after.headers["webhook-signature"].split(" ")) == 1


async def test_a_retry_is_signed_with_the_secrets_live_when_it_is_sent(
    api: Api, clock: FrozenClock
) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda n: (500 if n == 1 else 200, {}, 0.0)
        endpoint = await create_endpoint(api, hooks.url)
        old = endpoint["secret"]
        await receive_orders(api.container, api.keys.store_id, 1)
        assert await dispatcher(api.container).run_until_idle() == 1

        rotated = await call(
            api, "POST", f"/{endpoint['id']}/secret/rotate", json={"overlap_hours": 0}
        )
        new = rotated["secrets"][0]["secret"]
        assert len(rotated["secrets"]) == 1
        clock.advance(seconds=10)  # past the first retry (5 s + 20 %)
        assert await dispatcher(api.container).run_until_idle() == 1

    first, retry = hooks.requests
    assert first.headers["webhook-id"] == retry.headers["webhook-id"]
    assert first.body == retry.body
    assert accepted_by([old, new], first) == [True, False]
    assert accepted_by([old, new], retry) == [False, True]
    delivery = await only_delivery(api.container, endpoint["id"])
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
