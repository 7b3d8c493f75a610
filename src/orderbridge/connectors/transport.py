"""The SSRF guard for connectors' HTTP clients (httpx).

Every connector the push job builds gets a ``GuardedTransport``: a platform's base URL is a
merchant's input, and so is the custom endpoint, so each request passes the same two checks
as a webhook (``outbound.guard``): the URL (scheme, no credentials, IP-literal hosts), and
the addresses its host name resolves to. The connection is then made to the vetted address
itself (the request's host is replaced by it; the ``Host`` header and the TLS server name
stay the original name, so certificates are still checked against the name), so a second
DNS answer (rebinding) cannot send the request elsewhere.

A refusal is an ``httpx.ConnectError`` (a transport-level failure, which connectors treat
as retryable) whose message says why and whose ``__cause__`` is the ``UnsafeTarget``.
"""

from __future__ import annotations

import asyncio
import socket
from ipaddress import ip_address

import httpx

from orderbridge.outbound.guard import OutboundPolicy, Refusal, UnsafeTarget, check_url


class GuardedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self, policy: OutboundPolicy, inner: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.policy = policy
        self.inner = inner or httpx.AsyncHTTPTransport(retries=0)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            target = check_url(str(request.url), self.policy)
            if target.ip is None and not self.policy.allow_private:
                address = await self._vetted_address(target.host, target.port)
                request.extensions = {**request.extensions, "sni_hostname": target.host}
                request.url = request.url.copy_with(host=address)
        except UnsafeTarget as refusal:
            raise httpx.ConnectError(str(refusal), request=request) from refusal
        return await self.inner.handle_async_request(request)

    async def _vetted_address(self, host: str, port: int) -> str:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            raise UnsafeTarget(Refusal.INVALID_URL, f"cannot resolve {host}: {error}") from None
        addresses = [str(info[4][0]) for info in infos]
        for address in addresses:
            if self.policy.permits(ip_address(address.split("%", 1)[0])):
                return address
        raise UnsafeTarget(
            Refusal.TARGET_NOT_PUBLIC, f"{host} is not a public address", addresses=addresses
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
