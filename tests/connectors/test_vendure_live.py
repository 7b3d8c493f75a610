"""The Vendure connector against a real Vendure 3.7 (tests/support/vendure.py installs,
seeds and starts it on loopback once per session). Every assertion about what Vendure
holds is read back through its Admin API, not from the connector's answer."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from orderbridge.clock import FrozenClock
from orderbridge.connectors.port import (
    ConnectionSettings,
    PushRejected,
    PushRetryable,
    RejectionCode,
)
from orderbridge.connectors.vendure import VendureConnector
from orderbridge.demo import sample_order
from orderbridge.jobs.worker import Worker, WorkerOptions
from tests.conftest import Api
from tests.connectors.orders import address, push_order
from tests.plugnplay.test_push_crash import wait_for_locks_of_the_dead
from tests.support import vendure as harness
from tests.support.concurrency import kill, spawn, wait_until
from tests.support.localstripe import free_loopback_port
from tests.support.stalling_worker import LEASE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def vendure() -> Iterator[harness.VendureServer]:
    server = harness.start_or_skip()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def admin(vendure: harness.VendureServer) -> Iterator[harness.AdminClient]:
    with harness.AdminClient(vendure) as client:
        yield client


def vendure_settings(server: harness.VendureServer, **changes: object) -> ConnectionSettings:
    settings = ConnectionSettings(
        platform="vendure",
        base_url=server.admin_url,
        credentials={"username": server.username, "password": server.password},
        options={"shipping_method": harness.SHIPPING_CODE},
        timeout=10.0,
    )
    return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]


MakeConnector = Callable[..., VendureConnector]


@pytest.fixture
async def make_connector(vendure: harness.VendureServer) -> AsyncIterator[MakeConnector]:
    built: list[VendureConnector] = []

    def make(
        transport: httpx.AsyncBaseTransport | None = None, **changes: object
    ) -> VendureConnector:
        connector = VendureConnector(vendure_settings(vendure, **changes), transport=transport)
        built.append(connector)
        return connector

    yield make
    for connector in built:
        await connector.aclose()


@pytest.fixture
def vendure_connector(make_connector: MakeConnector) -> VendureConnector:
    return make_connector()


class Interfering(httpx.AsyncBaseTransport):
    """The real transport, with a fault injected around the requests whose GraphQL
    operation is named ``operation``: after Vendure answered (``after``: the platform
    acted, the answer got lost) or instead of sending (``before``)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.faults: dict[str, tuple[str, Callable[[httpx.Request], httpx.Response] | None]] = {}
        self.operations: list[str] = []

    def fail(
        self,
        operation: str,
        when: str,
        answer: Callable[[httpx.Request], httpx.Response] | None = None,
    ) -> None:
        self.faults[operation] = (when, answer)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        operation = _operation(request)
        self.operations.append(operation)
        when, answer = self.faults.get(operation, ("", None))
        if when == "before":
            if answer is not None:
                return answer(request)
            raise httpx.ConnectError("injected: connection refused", request=request)
        response = await self._inner.handle_async_request(request)
        if when == "after":
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("injected: the answer never came", request=request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def _operation(request: httpx.Request) -> str:
    """The GraphQL operation name (``Login``, ``Draft``, ``DraftOrder``, ``SettleOrder``...)."""
    found = _OPERATION.match(json.loads(request.content)["query"])
    return found.group(1) if found else "anonymous"


_OPERATION = re.compile(r"\s*(?:mutation|query)\s+(\w+)")


# -- success ---------------------------------------------------------------------------------


async def test_push_creates_a_settled_order_tagged_with_our_order_id(
    vendure_connector: VendureConnector, admin: harness.AdminClient
) -> None:
    order = push_order(lines=[("WIDGET-1", 2), ("MUG-BLUE", 1)])

    created = await vendure_connector.create_order(order)

    [held] = admin.order_by_external_id(order.order_id)
    assert (created.id, created.number) == (held["id"], held["code"])
    assert held["state"] == "PaymentSettled"
    assert held["customFields"]["externalId"] == order.order_id
    assert held["currencyCode"] == order.currency
    assert [(line["productVariant"]["sku"], line["quantity"]) for line in held["lines"]] == [
        ("WIDGET-1", 2),
        ("MUG-BLUE", 1),
    ]
    assert held["customer"] == {
        "emailAddress": order.email,
        "firstName": order.first_name,
        "lastName": order.last_name,
    }
    for mine, theirs in (
        (order.shipping_address, held["shippingAddress"]),
        (order.billing, held["billingAddress"]),
    ):
        assert theirs == {
            "fullName": f"{mine.first_name} {mine.last_name}",
            "streetLine1": mine.line1,
            "city": mine.city,
            "postalCode": mine.postal_code,
            "countryCode": mine.country,
        }
    [payment] = held["payments"]
    assert payment["state"] == "Settled"
    assert payment["amount"] == held["totalWithTax"]
    assert payment["transactionId"] == order.payment_reference
    assert payment["metadata"]["orderbridge_order_id"] == order.order_id
    assert payment["metadata"]["total"] == str(order.totals.total)
    assert created.details["total"] == str(Decimal(held["totalWithTax"]) / 100)
    assert admin.stock("WIDGET-1")["stockAllocated"] >= 2


async def test_an_order_in_the_buyer_currency_is_created_in_that_currency(
    vendure_connector: VendureConnector, admin: harness.AdminClient
) -> None:
    order = push_order(lines=[("WIDGET-1", 1)], currency="EUR")

    created = await vendure_connector.create_order(order)

    [held] = admin.order_by_external_id(order.order_id)
    assert held["currencyCode"] == "EUR"
    assert created.details["currency"] == "EUR"


async def test_first_eligible_shipping_method_is_used_without_the_option(
    make_connector: MakeConnector, admin: harness.AdminClient
) -> None:
    connector = make_connector(options={})
    order = push_order(lines=[("WIDGET-1", 1)])

    await connector.create_order(order)

    [held] = admin.order_by_external_id(order.order_id)
    assert held["state"] == "PaymentSettled"


async def test_find_order_returns_the_settled_order_and_none_for_an_unknown_id(
    vendure_connector: VendureConnector,
) -> None:
    order = push_order(lines=[("WIDGET-1", 1)])
    created = await vendure_connector.create_order(order)

    assert await vendure_connector.find_order(order.order_id) == created
    assert await vendure_connector.find_order("no-such-order") is None


# -- rejections --------------------------------------------------------------------------


async def _rejected(call: Awaitable[object]) -> PushRejected:
    with pytest.raises(PushRejected) as caught:
        await call
    return caught.value


def _drafts(admin: harness.AdminClient) -> list[str]:
    return [order["id"] for order in admin.orders_in_state("Draft")]


async def test_out_of_stock_item_is_rejected_and_no_draft_is_left(
    vendure_connector: VendureConnector, admin: harness.AdminClient
) -> None:
    drafts = _drafts(admin)
    order = push_order(lines=[("WIDGET-1", 1), ("WIDGET-OOS", 1)])

    rejection = await _rejected(vendure_connector.create_order(order))

    assert rejection.code is RejectionCode.OUT_OF_STOCK
    assert rejection.skus == ("WIDGET-OOS",)
    assert admin.order_by_external_id(order.order_id) == []
    assert _drafts(admin) == drafts


async def test_partial_stock_is_a_rejection_not_a_smaller_order(
    vendure_connector: VendureConnector, admin: harness.AdminClient
) -> None:
    before = admin.stock("WIDGET-LOW")
    order = push_order(lines=[("WIDGET-LOW", 5)])

    rejection = await _rejected(vendure_connector.create_order(order))

    assert rejection.code is RejectionCode.OUT_OF_STOCK
    assert "available: 3" in rejection.detail
    assert admin.order_by_external_id(order.order_id) == []
    assert admin.stock("WIDGET-LOW") == before


async def test_unknown_sku_is_rejected_before_any_draft_is_made(
    make_connector: MakeConnector, admin: harness.AdminClient
) -> None:
    transport = Interfering()
    connector = make_connector(transport)
    drafts = _drafts(admin)
    order = push_order(lines=[("WIDGET-1", 1), ("NO-SUCH-SKU", 1)])

    rejection = await _rejected(connector.create_order(order))

    assert rejection.code is RejectionCode.PRODUCT_NOT_FOUND
    assert rejection.skus == ("NO-SUCH-SKU",)
    assert "Draft" not in transport.operations
    assert _drafts(admin) == drafts


async def test_unknown_country_is_an_invalid_address(
    vendure_connector: VendureConnector, admin: harness.AdminClient
) -> None:
    drafts = _drafts(admin)
    order = dataclasses.replace(
        push_order(lines=[("WIDGET-1", 1)]), shipping_address=address(country="XX")
    )

    rejection = await _rejected(vendure_connector.create_order(order))

    assert rejection.code is RejectionCode.INVALID_ADDRESS
    assert _drafts(admin) == drafts


async def test_email_of_a_registered_customer_is_an_invalid_customer(
    vendure_connector: VendureConnector, admin: harness.AdminClient
) -> None:
    email = f"registered-{free_loopback_port()}@example.com"
    admin(
        """mutation($i: CreateCustomerInput!) { createCustomer(input: $i, password: "pw-12345678")
            { __typename } }""",
        i={"emailAddress": email, "firstName": "Reg", "lastName": "Istered"},
    )
    order = dataclasses.replace(push_order(lines=[("WIDGET-1", 1)]), email=email)

    rejection = await _rejected(vendure_connector.create_order(order))

    assert rejection.code is RejectionCode.INVALID_CUSTOMER
    assert admin.order_by_external_id(order.order_id) == []


async def test_currency_the_channel_does_not_sell_in_is_unsupported(
    vendure_connector: VendureConnector,
) -> None:
    order = dataclasses.replace(push_order(lines=[("WIDGET-1", 1)]), currency="GBP")

    rejection = await _rejected(vendure_connector.create_order(order))

    assert rejection.code is RejectionCode.CURRENCY_UNSUPPORTED


async def test_unknown_shipping_method_code_is_shipping_unavailable(
    make_connector: MakeConnector,
) -> None:
    connector = make_connector(options={"shipping_method": "no-such-method"})

    rejection = await _rejected(connector.create_order(push_order(lines=[("WIDGET-1", 1)])))

    assert rejection.code is RejectionCode.SHIPPING_UNAVAILABLE


async def test_a_variant_re_created_since_it_was_cached_is_looked_up_again(
    make_connector: MakeConnector, admin: harness.AdminClient
) -> None:
    transport = Interfering()
    connector = make_connector(transport)
    sku = f"REMADE-{free_loopback_port()}"
    first = _create_variant(admin, sku)
    await connector.create_order(push_order(lines=[(sku, 1)]))
    admin("mutation($id: ID!) { deleteProductVariant(id: $id) { result } }", id=first)
    _create_variant(admin, sku)

    order = push_order(lines=[(sku, 1)])
    await connector.create_order(order)

    [held] = admin.order_by_external_id(order.order_id)
    assert held["state"] == "PaymentSettled"
    assert transport.operations.count("Variants") == 2

    admin(
        "mutation($id: ID!) { deleteProductVariant(id: $id) { result } }",
        id=admin.variant_id(sku),
    )
    rejection = await _rejected(connector.create_order(push_order(lines=[(sku, 1)])))
    assert rejection.code is RejectionCode.PRODUCT_NOT_FOUND


def _create_variant(admin: harness.AdminClient, sku: str) -> str:
    product = admin(
        """mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }""",
        i={
            "translations": [
                {"languageCode": "en", "name": sku, "slug": sku.lower(), "description": sku}
            ]
        },
    )["createProduct"]["id"]
    admin(
        """mutation($i: [CreateProductVariantInput!]!) { createProductVariants(input: $i)
            { id } }""",
        i=[
            {
                "productId": product,
                "sku": sku,
                "price": 1000,
                "stockOnHand": 100,
                "translations": [{"languageCode": "en", "name": sku}],
            }
        ],
    )
    return admin.variant_id(sku)


# -- retries and leftovers -----------------------------------------------------------------


async def test_retry_after_a_timeout_on_the_last_call_finds_the_order_instead_of_duplicating(
    make_connector: MakeConnector, admin: harness.AdminClient
) -> None:
    transport = Interfering()
    transport.fail("SettleOrder", "after")
    connector = make_connector(transport)
    order = push_order(lines=[("WIDGET-1", 1)])

    with pytest.raises(PushRetryable):
        await connector.create_order(order)

    found = await connector.find_order(order.order_id)
    [held] = admin.order_by_external_id(order.order_id)
    assert found is not None and (found.id, found.number) == (held["id"], held["code"])
    assert held["state"] == "PaymentSettled"
    # Even a create_order repeated without find_order returns that order.
    transport.faults.clear()
    assert await connector.create_order(order) == found
    assert len(admin.order_by_external_id(order.order_id)) == 1


async def test_draft_left_by_a_crashed_attempt_is_deleted_and_the_retry_succeeds(
    make_connector: MakeConnector, admin: harness.AdminClient
) -> None:
    transport = Interfering()
    transport.fail("DraftOrder", "after")  # the tagged draft is built, the answer lost
    transport.fail("DeleteDraft", "before")  # and the clean-up never reaches Vendure
    connector = make_connector(transport)
    order = push_order(lines=[("WIDGET-1", 1)])
    with pytest.raises(PushRetryable):
        await connector.create_order(order)
    [leftover] = admin.order_by_external_id(order.order_id)
    assert leftover["state"] == "Draft"
    transport.faults.clear()

    assert await connector.find_order(order.order_id) is None
    assert admin.order_by_external_id(order.order_id) == []
    created = await connector.create_order(order)
    [held] = admin.order_by_external_id(order.order_id)
    assert (held["id"], held["state"]) == (created.id, "PaymentSettled")


async def test_order_stuck_before_payment_is_cancelled_and_untagged_by_the_retry(
    vendure_connector: VendureConnector, admin: harness.AdminClient
) -> None:
    order = push_order(lines=[("WIDGET-1", 1)])
    stuck = _order_in_arranging_payment(admin, order.order_id)

    created = await vendure_connector.create_order(order)

    [held] = admin.order_by_external_id(order.order_id)
    assert held["id"] == created.id != stuck
    state = admin("query($id: ID!) { order(id: $id) { state } }", id=stuck)["order"]["state"]
    assert state == "Cancelled"


def _order_in_arranging_payment(admin: harness.AdminClient, external_id: str) -> str:
    draft_id: str = admin("mutation { createDraftOrder { id } }")["createDraftOrder"]["id"]
    variant = admin(
        '{ productVariants(options: {filter: {sku: {eq: "WIDGET-1"}}}) { items { id } } }'
    )
    admin(
        """mutation($o: ID!, $e: String!, $v: ID!) {
            a: setDraftOrderCustomFields(orderId: $o, input: {id: $o, customFields:
              {externalId: $e}}) { id }
            b: addItemToDraftOrder(orderId: $o, input: {productVariantId: $v, quantity: 1})
              { __typename }
            c: setCustomerForDraftOrder(orderId: $o, input: {emailAddress: "stuck@example.com",
              firstName: "S", lastName: "T"}) { __typename }
            d: setDraftOrderShippingAddress(orderId: $o, input: {streetLine1: "1 Main St",
              countryCode: "FR"}) { id }
            e: setDraftOrderShippingMethod(orderId: $o, shippingMethodId: "1") { __typename }
            f: transitionOrderToState(id: $o, state: "ArrangingPayment") { __typename } }""",
        o=draft_id,
        e=external_id,
        v=variant["productVariants"]["items"][0]["id"],
    )
    return draft_id


async def test_server_errors_and_rate_limits_are_retryable(
    make_connector: MakeConnector, admin: harness.AdminClient
) -> None:
    transport = Interfering()
    transport.fail(
        "Draft", "before", lambda r: httpx.Response(429, headers={"Retry-After": "7"}, request=r)
    )
    connector = make_connector(transport)
    order = push_order(lines=[("WIDGET-1", 1)])

    with pytest.raises(PushRetryable) as limited:
        await connector.create_order(order)
    assert limited.value.retry_after == 7.0

    transport.fail("Draft", "before", lambda r: httpx.Response(503, text="busy", request=r))
    with pytest.raises(PushRetryable):
        await connector.create_order(order)
    assert admin.order_by_external_id(order.order_id) == []


async def test_an_answer_of_another_shape_is_an_invalid_response_not_a_crash(
    make_connector: MakeConnector,
) -> None:
    transport = Interfering()
    transport.fail(
        "Variants", "before", lambda r: httpx.Response(200, json={"data": {}}, request=r)
    )
    connector = make_connector(transport)

    rejection = await _rejected(connector.create_order(push_order(lines=[("WIDGET-1", 1)])))
    assert rejection.code is RejectionCode.INVALID_RESPONSE

    transport.fail(
        "Variants",
        "before",
        lambda r: httpx.Response(200, text="<html>proxy login</html>", request=r),
    )
    rejection = await _rejected(connector.create_order(push_order(lines=[("WIDGET-1", 1)])))
    assert rejection.code is RejectionCode.INVALID_RESPONSE


async def test_unreachable_vendure_is_retryable(make_connector: MakeConnector) -> None:
    connector = make_connector(base_url=f"http://127.0.0.1:{free_loopback_port()}/admin-api")

    with pytest.raises(PushRetryable):
        await connector.create_order(push_order(lines=[("WIDGET-1", 1)]))
    assert not (await connector.test_connection()).ok


# -- auth ----------------------------------------------------------------------------------


async def test_connection_test_passes_with_good_credentials(
    vendure_connector: VendureConnector,
) -> None:
    check = await vendure_connector.test_connection()

    assert check.ok, check.detail
    assert "EUR" in check.detail


async def test_connection_test_and_push_fail_with_a_bad_password(
    make_connector: MakeConnector, vendure: harness.VendureServer
) -> None:
    connector = make_connector(credentials={"username": vendure.username, "password": "wrong"})

    check = await connector.test_connection()
    rejection = await _rejected(connector.create_order(push_order(lines=[("WIDGET-1", 1)])))

    assert not check.ok and check.code is RejectionCode.AUTH_FAILED
    assert rejection.code is RejectionCode.AUTH_FAILED


async def test_login_happens_once_and_an_expired_session_logs_in_again(
    make_connector: MakeConnector, admin: harness.AdminClient
) -> None:
    transport = Interfering()
    connector = make_connector(transport)
    await connector.create_order(push_order(lines=[("WIDGET-1", 1)]))
    await connector.create_order(push_order(lines=[("WIDGET-1", 1)]))
    assert transport.operations.count("Login") == 1

    expired = _ExpiringOnce(transport)
    connector = make_connector(expired)
    await connector.create_order(push_order(lines=[("WIDGET-1", 1)]))
    order = push_order(lines=[("WIDGET-1", 1)])
    expired.expire_next = True
    await connector.create_order(order)

    assert transport.operations.count("Login") == 3
    assert admin.order_by_external_id(order.order_id)[0]["state"] == "PaymentSettled"


class _ExpiringOnce(httpx.AsyncBaseTransport):
    """Replaces the bearer token of one request with one Vendure does not know, as after a
    session expired."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.expire_next = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.expire_next and "Authorization" in request.headers:
            self.expire_next = False
            request.headers["Authorization"] = "Bearer expired-session-token"
        return await self.inner.handle_async_request(request)


# -- end to end: the push job and the worker -----------------------------------------------


async def test_ready_order_is_pushed_to_vendure_accepted_with_its_code_and_completed(
    api: Api, vendure: harness.VendureServer, admin: harness.AdminClient, rng: random.Random
) -> None:
    await _connect_vendure(api, vendure)
    payload = sample_order(rng)

    order = await api.ready_order(payload)

    [held] = admin.order_by_external_id(order["id"])
    assert order["status"] == "COMPLETED"
    assert order["external"] == {"order_id": held["id"], "order_number": held["code"]}
    assert held["state"] == "PaymentSettled"
    assert held["currencyCode"] == payload["currency"]
    assert sorted((line["productVariant"]["sku"], line["quantity"]) for line in held["lines"]) == (
        sorted((item["sku"], item["quantity"]) for item in payload["items"])
    )
    [payment] = held["payments"]
    assert payment["metadata"]["total"] == order["totals"]["total"]


async def _connect_vendure(api: Api, vendure: harness.VendureServer) -> None:
    connection = await api.client.put(
        f"/v2/connections/{api.keys.store_id}",
        json={
            "platform": "vendure",
            "base_url": vendure.admin_url,
            "credentials": {"username": vendure.username, "password": vendure.password},
            "options": {"shipping_method": harness.SHIPPING_CODE},
            "timeout": 10,
        },
        headers=api.keys.merchant,
    )
    assert connection.status_code in (200, 201), connection.text


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", ["settled", "draft"])
async def test_worker_killed_mid_push_leaves_exactly_one_vendure_order(
    where: str,
    api: Api,
    vendure: harness.VendureServer,
    admin: harness.AdminClient,
    rng: random.Random,
    clock: FrozenClock,
    database_url: str,
    tmp_path: Path,
) -> None:
    """SIGKILL while Vendure holds the settled order and nothing is recorded on our side,
    or while a tagged draft is half-way: the next run finds the order, or clears the draft
    and pushes again. Either way Vendure ends with one order for ours, and ours with it."""
    order = await api.ready_order(sample_order(rng))  # READY; the store connects afterwards
    await _connect_vendure(api, vendure)
    retry = await api.client.post(
        f"/v2/orders/{api.keys.store_id}/{order['id']}/push", headers=api.keys.merchant
    )
    assert retry.status_code == 202, retry.text
    stalled = tmp_path / "stalled"
    child = await spawn(
        "tests.connectors.vendure_push_worker",
        database_url,
        str(stalled),
        clock.now().isoformat(),
        where,
        settings=api.container.settings,
        log_dir=tmp_path,
    )
    try:

        async def stalled_or_exited() -> bool:
            return stalled.exists() or child.returncode is not None

        await wait_until(stalled_or_exited, within=60, what="the push worker to stall")
        assert child.returncode is None, "the push worker exited on its own"
        [left] = admin.order_by_external_id(order["id"])
        assert left["state"] == ("PaymentSettled" if where == "settled" else "Draft")
        child.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
    finally:
        kill(child)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(child.wait(), 10)
    await wait_for_locks_of_the_dead(api.container)

    worker = Worker(api.container.db, clock, api.container.handlers, WorkerOptions(lease=LEASE))
    clock.advance(seconds=LEASE.total_seconds() + 1)
    await worker.run_until_idle()

    [held] = admin.order_by_external_id(order["id"])
    assert held["state"] == "PaymentSettled"
    if where == "settled":
        assert held["id"] == left["id"]
    order = await api.get(order["id"])
    assert order["status"] == "COMPLETED"
    assert order["external"] == {"order_id": held["id"], "order_number": held["code"]}
