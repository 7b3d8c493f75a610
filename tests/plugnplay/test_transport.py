"""The SSRF guard of connectors' HTTP clients: URLs checked, names resolved and vetted, and
the request sent to the vetted address (Host header and TLS name kept)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest

from orderbridge.connectors.transport import GuardedTransport
from orderbridge.outbound.guard import OutboundPolicy, UnsafeTarget


class Recorder(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={})


def resolving_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> None:
    loop = asyncio.get_running_loop()

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[Any]:
        family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


async def test_a_name_is_sent_to_its_vetted_address_keeping_host_and_tls_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolving_to(monkeypatch, "10.0.0.7", "93.184.216.34")
    inner = Recorder()
    async with httpx.AsyncClient(transport=GuardedTransport(OutboundPolicy(), inner)) as client:
        await client.post("https://shop.example/admin/orders", json={})

    [sent] = inner.requests
    assert sent.url.host == "93.184.216.34"
    assert sent.url.path == "/admin/orders"
    assert sent.headers["host"] == "shop.example"
    assert sent.extensions["sni_hostname"] == "shop.example"


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("https://shop.example/", ("127.0.0.1",)),
        ("https://shop.example/", ("10.0.0.7", "169.254.169.254")),
        ("https://[::1]/", ()),
        ("http://shop.example/", ("93.184.216.34",)),
        ("https://user:pw@shop.example/", ("93.184.216.34",)),
    ],
)
async def test_private_targets_plain_http_and_credentials_in_urls_are_refused(
    monkeypatch: pytest.MonkeyPatch, url: str, addresses: tuple[str, ...]
) -> None:
    if addresses:
        resolving_to(monkeypatch, *addresses)
    inner = Recorder()
    async with httpx.AsyncClient(transport=GuardedTransport(OutboundPolicy(), inner)) as client:
        with pytest.raises(httpx.ConnectError) as refused:
            await client.get(url)

    assert isinstance(refused.value.__cause__, UnsafeTarget)
    assert inner.requests == []


async def test_development_policy_lets_loopback_through_unchanged() -> None:
    inner = Recorder()
    policy = OutboundPolicy(allow_private=True)
    async with httpx.AsyncClient(transport=GuardedTransport(policy, inner)) as client:
        await client.get("http://localhost:8080/orders")

    [sent] = inner.requests
    assert sent.url.host == "localhost"
