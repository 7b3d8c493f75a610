"""The SSRF guard on real aiohttp requests to a local server on 127.0.0.1 (loopback only).

The sandbox has no public addresses, so where a test needs a target the policy accepts while
the guard is strict, 127.0.0.1 is put in ``allowed_networks`` to stand in for a public host.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import ip_network

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer

from orderbridge.outbound.guard import (
    OutboundPolicy,
    Refusal,
    UnsafeTarget,
    check_url,
    find_unsafe_target,
    guarded_connector,
    open_session,
)

TIMEOUT = aiohttp.ClientTimeout(total=5)
STRICT_HTTP = OutboundPolicy(https_only=False)  # strict on addresses; the server has no TLS
DEVELOPMENT = OutboundPolicy(allow_private=True)
ONLY_LOCAL_SERVER = OutboundPolicy(https_only=False, allowed_networks=(ip_network("127.0.0.1/32"),))


@dataclass
class Server:
    port: int
    hits: list[str] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(port=0)

    async def ok(request: web.Request) -> web.Response:
        state.hits.append(request.path)
        return web.Response(text="ok")

    async def redirect(request: web.Request) -> web.Response:
        state.hits.append(request.path)
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/redirect", redirect)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    state.port = test_server.port or 0
    try:
        yield state
    finally:
        await test_server.close()


class ScriptedResolver(AbstractResolver):
    """A fake DNS: each call answers with the next list of addresses, the last repeats."""

    def __init__(self, *answers: list[str]) -> None:
        self._answers = list(answers)
        self.calls = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self._answers[min(self.calls, len(self._answers) - 1)]
        self.calls += 1
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        pass


async def get_status(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url, allow_redirects=True) as response:
        await response.read()
        return response.status


async def refusal(session: aiohttp.ClientSession, url: str) -> tuple[UnsafeTarget, Exception]:
    with pytest.raises(aiohttp.ClientError) as caught:
        await get_status(session, url)
    unsafe = find_unsafe_target(caught.value)
    assert unsafe is not None, f"not refused by the guard: {caught.value!r}"
    return unsafe, caught.value


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "[::ffff:127.0.0.1]", "[::1]", "0x7f000001", "2130706433", "127.1"]
)
async def test_literal_loopback_is_refused_before_connecting(server: Server, host: str) -> None:
    async with open_session(STRICT_HTTP, TIMEOUT) as session:
        unsafe, error = await refusal(session, server.url("/ok", host))
    assert unsafe.code == Refusal.TARGET_NOT_PUBLIC
    assert isinstance(error, aiohttp.ClientOSError)
    assert server.hits == []


async def test_localhost_is_refused_by_the_resolver(server: Server) -> None:
    async with open_session(STRICT_HTTP, TIMEOUT) as session:
        unsafe, error = await refusal(session, server.url("/ok", "localhost"))
    assert unsafe.code == Refusal.TARGET_NOT_PUBLIC
    # aiohttp wraps the resolver's OSError; the guard's error is its os_error and cause.
    assert isinstance(error, aiohttp.ClientConnectorDNSError)
    assert error.os_error is unsafe and error.__cause__ is unsafe
    assert server.hits == []


async def test_connector_alone_refuses_names_resolving_to_loopback(server: Server) -> None:
    async with aiohttp.ClientSession(connector=guarded_connector(STRICT_HTTP)) as session:
        unsafe, error = await refusal(session, server.url("/ok", "localhost"))
    assert isinstance(error, aiohttp.ClientConnectorDNSError)
    assert unsafe.code == Refusal.TARGET_NOT_PUBLIC
    assert server.hits == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0x7f000001"])
async def test_development_policy_reaches_loopback(server: Server, host: str) -> None:
    async with open_session(DEVELOPMENT, TIMEOUT) as session:
        assert await get_status(session, server.url("/ok", host)) == 200
    assert server.hits == ["/ok"]


@pytest.mark.parametrize(
    "policy",
    [OutboundPolicy(), OutboundPolicy(allow_private=True, https_only=True)],
    ids=["default", "private-but-https-only"],
)
async def test_http_is_refused_when_https_only(server: Server, policy: OutboundPolicy) -> None:
    async with open_session(policy, TIMEOUT) as session:
        unsafe, _ = await refusal(session, server.url("/ok"))
    assert unsafe.code == Refusal.SCHEME_NOT_ALLOWED
    assert server.hits == []


async def test_name_resolving_only_to_loopback_is_refused(server: Server) -> None:
    fake = ScriptedResolver(["127.0.0.1"])
    async with open_session(STRICT_HTTP, TIMEOUT, resolver=fake) as session:
        unsafe, _ = await refusal(session, server.url("/ok", "evil.test"))
    assert unsafe.addresses == ("127.0.0.1",)
    assert server.hits == []


async def test_non_public_answers_are_dropped_and_the_rest_used(server: Server) -> None:
    fake = ScriptedResolver(["10.0.0.1", "169.254.169.254", "127.0.0.1"])
    async with open_session(ONLY_LOCAL_SERVER, TIMEOUT, resolver=fake) as session:
        assert await get_status(session, server.url("/ok", "mixed.test")) == 200
    assert server.hits == ["/ok"]


async def test_rebinding_after_the_check_cannot_redirect_the_connection(server: Server) -> None:
    # First answer acceptable, every later one forbidden: the classic rebinding attack.
    fake = ScriptedResolver(["127.0.0.1"], ["127.0.0.2"])
    async with open_session(ONLY_LOCAL_SERVER, TIMEOUT, resolver=fake) as session:
        assert await get_status(session, server.url("/ok", "rebind.test")) == 200
        # The DNS cache holds only what the guard returned, so a cache hit is still safe.
        assert await get_status(session, server.url("/ok", "rebind.test")) == 200
        assert fake.calls == 1
        assert isinstance(session.connector, aiohttp.TCPConnector)
        session.connector.clear_dns_cache()
        await session.connector.close()  # no pooled connection to the vetted address
    async with open_session(
        ONLY_LOCAL_SERVER, TIMEOUT, resolver=fake, use_dns_cache=False
    ) as session:
        unsafe, _ = await refusal(session, server.url("/ok", "rebind.test"))
    assert unsafe.code == Refusal.TARGET_NOT_PUBLIC
    assert fake.calls == 2
    assert server.hits == ["/ok", "/ok"]


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.2:{port}/ok", "http://[::ffff:127.0.0.2]:{port}/ok", "http://0x7f000002/"],
)
async def test_redirect_to_a_non_public_literal_is_refused(server: Server, target: str) -> None:
    url = server.url("/redirect") + "?to=" + target.format(port=server.port)
    async with open_session(ONLY_LOCAL_SERVER, TIMEOUT) as session:
        unsafe, _ = await refusal(session, url)
    assert unsafe.code == Refusal.TARGET_NOT_PUBLIC
    assert server.hits == ["/redirect"]


async def test_request_through_a_proxy_is_refused(server: Server) -> None:
    async with open_session(DEVELOPMENT, TIMEOUT) as session:
        with pytest.raises(aiohttp.ClientError) as caught:
            await session.get(server.url("/ok"), proxy=server.url("/"))
    unsafe = find_unsafe_target(caught.value)
    assert unsafe is not None and unsafe.code == Refusal.PROXY_NOT_ALLOWED
    assert server.hits == []


async def test_check_url_before_sending_gives_the_same_verdict(server: Server) -> None:
    with pytest.raises(UnsafeTarget):
        check_url(server.url("/ok"), STRICT_HTTP)
    assert check_url(server.url("/ok"), DEVELOPMENT).port == server.port
