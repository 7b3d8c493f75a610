"""The connector contract (orderbridge.connectors.port): every plug & play connector passes
these against its platform fake (``fake`` is parametrised over platforms/__init__.py FAKES).
A new platform joins by writing its fake and adding it to FAKES."""

from __future__ import annotations

import dataclasses
import socket
from decimal import Decimal
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from orderbridge.connectors.port import (
    Connector,
    PushError,
    PushRejected,
    PushRetryable,
    RejectionCode,
)
from tests.connectors.conftest import MakeConnector
from tests.connectors.fakes import FakeOrder, Fault, PlatformFake
from tests.connectors.orders import BASE_CURRENCY, BUYER_CURRENCY, address, push_order

pytestmark = pytest.mark.timeout(30)

SHIRT, MUG = "TSHIRT-RED-M", "MUG-BLUE"


@pytest.fixture(autouse=True)
def catalog(fake: PlatformFake) -> None:
    fake.add_product(SHIRT, stock=10, price=Decimal("25.00"))
    fake.add_product(MUG, stock=10, price=Decimal("12.50"))


def only_order(fake: PlatformFake) -> FakeOrder:
    assert len(fake.orders) == 1, fake.orders
    return fake.orders[0]


async def test_created_order_returns_the_id_and_number_the_platform_holds(
    fake: PlatformFake, connector: Connector
) -> None:
    order = push_order()

    created = await connector.create_order(order)

    held = only_order(fake)
    assert (created.id, created.number) == (held.id, held.number)
    assert sorted(held.skus) == [(MUG, 1), (SHIRT, 2)]
    assert held.email == order.email


async def test_created_order_is_tagged_with_our_order_id(
    fake: PlatformFake, connector: Connector
) -> None:
    order = push_order()

    await connector.create_order(order)

    assert only_order(fake).external_ref == order.order_id


async def test_find_order_finds_the_order_by_our_id(
    fake: PlatformFake, connector: Connector
) -> None:
    order = push_order()
    other = push_order(lines=[(MUG, 1)])
    created = await connector.create_order(order)
    await connector.create_order(other)

    found = await connector.find_order(order.order_id)

    assert found is not None
    assert (found.id, found.number) == (created.id, created.number)


async def test_find_order_returns_none_for_an_unknown_id(
    fake: PlatformFake, connector: Connector
) -> None:
    await connector.create_order(push_order())

    assert await connector.find_order(push_order().order_id) is None


async def test_find_order_matches_our_id_exactly(fake: PlatformFake, connector: Connector) -> None:
    order = push_order()
    await connector.create_order(order)

    assert await connector.find_order(order.order_id[:-1]) is None
    assert await connector.find_order(order.order_id + "0") is None


async def test_a_fresh_connector_finds_the_order_another_one_created(
    fake: PlatformFake, make_connector: MakeConnector
) -> None:
    """What a worker restarted after a crash relies on: the lookup needs nothing the
    connector that pushed kept in memory."""
    order = push_order()
    created = await make_connector().create_order(order)

    found = await make_connector().find_order(order.order_id)

    assert found is not None
    assert (found.id, found.number) == (created.id, created.number)


@pytest.mark.parametrize("currency", [BASE_CURRENCY, BUYER_CURRENCY])
async def test_amounts_booked_equal_the_push_order_amounts(
    fake: PlatformFake, connector: Connector, currency: str
) -> None:
    order = push_order(currency=currency)
    bookable = getattr(fake, "currencies", None)
    if bookable is not None and currency not in bookable:
        with pytest.raises(PushRejected) as rejected:
            await connector.create_order(order)
        assert rejected.value.code is RejectionCode.CURRENCY_UNSUPPORTED
        assert fake.orders == []
        return

    await connector.create_order(order)

    held = only_order(fake)
    assert held.currency == currency
    assert held.total == order.totals.total
    assert str(held.total.quantize(Decimal("0.01"))) == str(order.totals.total)
    if held.shipping is not None:
        assert held.shipping == order.totals.shipping
    if held.tax is not None:
        assert held.tax == order.totals.tax
    if held.discount is not None:
        assert held.discount == order.totals.discount
    for line in order.lines:
        if line.sku in held.unit_prices:
            assert held.unit_prices[line.sku] == line.unit_price


async def test_unknown_sku_is_rejected_as_product_not_found(
    fake: PlatformFake, connector: Connector
) -> None:
    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(push_order(lines=[(SHIRT, 1), ("NO-SUCH-SKU", 1)]))

    assert rejected.value.code is RejectionCode.PRODUCT_NOT_FOUND
    assert rejected.value.detail
    assert fake.orders == []


async def test_more_than_the_stock_is_rejected_as_out_of_stock(
    fake: PlatformFake, connector: Connector
) -> None:
    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(push_order(lines=[(SHIRT, 11)]))

    assert rejected.value.code is RejectionCode.OUT_OF_STOCK
    assert fake.orders == []


async def test_the_last_items_sell_once(fake: PlatformFake, connector: Connector) -> None:
    await connector.create_order(push_order(lines=[(SHIRT, 10)]))

    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(push_order(lines=[(SHIRT, 1)]))

    assert rejected.value.code is RejectionCode.OUT_OF_STOCK
    assert len(fake.orders) == 1


async def test_address_without_street_or_city_is_rejected_as_invalid_address(
    fake: PlatformFake, connector: Connector
) -> None:
    order = dataclasses.replace(push_order(), shipping_address=address(line1="", city=""))

    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(order)

    assert rejected.value.code is RejectionCode.INVALID_ADDRESS
    assert fake.orders == []


async def test_bad_credentials_reject_the_push_as_auth_failed(
    fake: PlatformFake, make_connector: MakeConnector
) -> None:
    connector = make_connector(fake.bad_credentials())

    with pytest.raises(PushRejected) as rejected:
        await connector.create_order(push_order())

    assert rejected.value.code is RejectionCode.AUTH_FAILED
    assert fake.orders == []


async def test_connection_check_with_bad_credentials_fails_as_auth_failed(
    fake: PlatformFake, make_connector: MakeConnector
) -> None:
    check = await make_connector(fake.bad_credentials()).test_connection()

    assert check.ok is False
    assert check.code is RejectionCode.AUTH_FAILED
    assert check.detail


async def test_connection_check_with_good_credentials_succeeds(connector: Connector) -> None:
    check = await connector.test_connection()

    assert check.ok, check.detail
    assert check.code is None


@pytest.mark.parametrize("wait", [2.0, 7.5])
async def test_rate_limit_is_retryable_after_the_platforms_wait(
    fake: PlatformFake, connector: Connector, wait: float
) -> None:
    fake.fail_next(Fault("rate_limited", retry_after=wait))

    with pytest.raises(PushRetryable) as retryable:
        await connector.create_order(push_order())

    assert retryable.value.retry_after == pytest.approx(wait, abs=0.1)
    assert fake.orders == []


async def test_server_error_is_retryable_and_the_retry_succeeds(
    fake: PlatformFake, connector: Connector
) -> None:
    order = push_order()
    fake.fail_next(Fault("server_error"))

    with pytest.raises(PushRetryable):
        await connector.create_order(order)
    assert fake.orders == []
    assert await connector.find_order(order.order_id) is None
    created = await connector.create_order(order)

    assert only_order(fake).id == created.id


async def test_timeout_after_create_is_retryable_and_the_order_is_found_not_duplicated(
    fake: PlatformFake, connector: Connector
) -> None:
    order = push_order()
    fake.fail_next(Fault("timeout_after_create"))

    with pytest.raises(PushRetryable):
        await connector.create_order(order)
    found = await connector.find_order(order.order_id)

    held = only_order(fake)
    assert found is not None
    assert (found.id, found.number) == (held.id, held.number)


async def test_timeout_before_create_is_retryable_and_nothing_is_found(
    fake: PlatformFake, connector: Connector
) -> None:
    order = push_order()
    fake.fail_next(Fault("timeout_before_create"))

    with pytest.raises(PushRetryable):
        await connector.create_order(order)

    assert await connector.find_order(order.order_id) is None
    assert fake.orders == []


def closed_port_url(base_url: str) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))


async def test_unreachable_platform_is_retryable_and_fails_the_connection_check(
    fake: PlatformFake, make_connector: MakeConnector
) -> None:
    settings = fake.settings()
    connector = make_connector(
        dataclasses.replace(settings, base_url=closed_port_url(settings.base_url))
    )

    with pytest.raises(PushRetryable):
        await connector.create_order(push_order())
    with pytest.raises(PushRetryable):
        await connector.find_order("any")
    check = await connector.test_connection()
    assert check.ok is False


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("peer closed connection"),
        httpx.ReadError("reset"),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_transport_errors_are_retryable_never_raw_httpx(
    fake: PlatformFake, make_connector: MakeConnector, error: httpx.TransportError
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    connector = make_connector(transport=httpx.MockTransport(fail))

    with pytest.raises(PushRetryable):
        await connector.create_order(push_order())
    with pytest.raises(PushRetryable):
        await connector.find_order("any")
    assert (await connector.test_connection()).ok is False


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (200, b"<html>Maintenance</html>", "text/html"),
        (200, b'{"data": null', "application/json"),
        (200, b"[1, 2, 3]", "application/json"),
        (418, b"I'm a teapot", "text/plain"),
    ],
    ids=["html", "truncated-json", "unexpected-json", "unknown-status"],
)
async def test_unreadable_answers_are_push_errors_not_crashes(
    fake: PlatformFake,
    make_connector: MakeConnector,
    status: int,
    body: bytes,
    content_type: str,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers={"Content-Type": content_type})

    connector = make_connector(transport=httpx.MockTransport(answer))

    with pytest.raises(PushError):
        await connector.create_order(push_order())
    with pytest.raises(PushError):
        await connector.find_order("any")
    assert (await connector.test_connection()).ok is False
