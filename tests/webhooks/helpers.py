"""Helpers of the webhook tests: endpoints through the API, orders without the API, rows
of the delivery log, and signature checks with the third-party verifiers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import svix.webhooks
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as StandardRefusal
from svix.webhooks import WebhookVerificationError as SvixRefusal

from orderbridge.bootstrap import Container
from orderbridge.db.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orderbridge.demo import sample_order
from orderbridge.orders.schemas import CheckoutOrder
from orderbridge.webhooks.dispatcher import DispatcherOptions, WebhookDispatcher
from tests.conftest import Api
from tests.webhooks.receiver import Received

# Small timeouts and fast polling: a test never waits for production-sized intervals.
FAST = {"connect_timeout": 0.5, "total_timeout": 1.0, "poll_interval": 0.02}


def dispatcher(container: Container, **options: Any) -> WebhookDispatcher:
    """The container's dispatcher with test-sized timeouts and the configured retry policy."""
    options = {**FAST, "retry": container.retry_policy(), **options}
    return container.dispatcher(DispatcherOptions(**options))


async def create_endpoint(api: Api, url: str, **fields: Any) -> dict[str, Any]:
    response = await api.client.post(
        f"/v2/webhooks/{api.keys.store_id}", json={"url": url, **fields}, headers=api.keys.merchant
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def call(api: Api, method: str, path: str = "", **kwargs: Any) -> Any:
    """A webhooks API call that must succeed; its JSON body."""
    response = await api.client.request(
        method, f"/v2/webhooks/{api.keys.store_id}{path}", headers=api.keys.merchant, **kwargs
    )
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


async def receive_orders(container: Container, store_id: str, count: int, seed: int = 7) -> None:
    """``count`` orders received (one ``order.received`` event each), one transaction each,
    as the checkout would; their processing jobs are left alone."""
    rng = random.Random(seed)
    for n in range(count):
        order = CheckoutOrder.model_validate(sample_order(rng))
        async with container.db.transaction() as session:
            await container.orders.receive(session, store_id, f"wh-{seed}-{n}", order)


async def deliveries(container: Container, endpoint_id: str) -> list[WebhookDelivery]:
    async with container.db.reader() as session:
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id)
        )
        return list(rows.all())


async def only_delivery(container: Container, endpoint_id: str) -> WebhookDelivery:
    rows = await deliveries(container, endpoint_id)
    assert len(rows) == 1, rows
    return rows[0]


async def attempts(container: Container, delivery_id: int) -> list[WebhookAttempt]:
    async with container.db.reader() as session:
        rows = await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.attempt)
        )
        return list(rows.all())


async def endpoint_row(container: Container, endpoint_id: str) -> WebhookEndpoint:
    async with container.db.reader() as session:
        endpoint = await session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        return endpoint


def verify(secret: str, request: Received) -> None:
    """Both third-party verifiers accept the request with ``secret``; raise otherwise."""
    Webhook(secret).verify(request.body, request.headers)
    svix.webhooks.Webhook(secret).verify(request.body, request.headers)


def accepted_by(secrets: Sequence[str], request: Received) -> list[bool]:
    """For each secret: does a receiver holding only that secret accept the request? Both
    verifiers must give the same answer."""
    results = []
    for secret in secrets:
        verdicts = []
        for verifier, refusal in (
            (Webhook(secret), StandardRefusal),
            (svix.webhooks.Webhook(secret), SvixRefusal),
        ):
            try:
                verifier.verify(request.body, request.headers)
            except refusal:
                verdicts.append(False)
            else:
                verdicts.append(True)
        assert verdicts[0] == verdicts[1], f"the verifiers disagree: {verdicts}"
        results.append(verdicts[0])
    return results


@asynccontextmanager
async def running(sender: WebhookDispatcher) -> AsyncIterator[None]:
    """The dispatcher's loop in the background for the duration of the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
