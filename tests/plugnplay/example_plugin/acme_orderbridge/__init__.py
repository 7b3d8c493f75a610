"""A tiny third-party connector: the Acme order desk takes orders as JSON at
``POST {base_url}/orders`` with an ``X-Api-Key`` header and answers ``{"id", "ref"}``;
``GET {base_url}/orders?external_id=`` finds one. Only the port's contract is used."""

from __future__ import annotations

import httpx

from orderbridge.connectors.port import (
    ConnectionCheck,
    ConnectionSettings,
    PlatformOrder,
    PushOrder,
    PushRejected,
    PushRetryable,
    RejectionCode,
)


class AcmeConnector:
    platform = "acme"
    credential_fields = ("api_key",)
    option_fields = ("warehouse",)

    def __init__(
        self, settings: ConnectionSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.client = httpx.AsyncClient(
            base_url=settings.base_url,
            headers={"X-Api-Key": settings.credentials["api_key"]},
            timeout=settings.timeout,
            transport=transport,
        )

    async def create_order(self, order: PushOrder) -> PlatformOrder:
        body = {
            "external_id": order.order_id,
            "lines": [{"sku": line.sku, "qty": line.quantity} for line in order.lines],
            "total": str(order.totals.total),
            "currency": order.currency,
        }
        response = await self._send("POST", "/orders", json=body)
        answer = response.json()
        return PlatformOrder(id=str(answer["id"]), number=str(answer["ref"]))

    async def find_order(self, order_id: str) -> PlatformOrder | None:
        response = await self._send("GET", "/orders", params={"external_id": order_id})
        found = response.json()
        return PlatformOrder(id=str(found[0]["id"]), number=str(found[0]["ref"])) if found else None

    async def test_connection(self) -> ConnectionCheck:
        try:
            await self._send("GET", "/orders", params={"external_id": "0-0"})
        except PushRejected as rejected:
            return ConnectionCheck(False, rejected.detail, rejected.code)
        except PushRetryable as error:
            return ConnectionCheck(False, error.detail)
        return ConnectionCheck(True, "Acme answered")

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _send(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            response = await self.client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as error:
            raise PushRetryable(f"Acme unreachable: {error}") from error
        if response.status_code in (401, 403):
            raise PushRejected(RejectionCode.AUTH_FAILED, "Acme refused the key")
        if response.status_code >= 500 or response.status_code == 429:
            raise PushRetryable(f"Acme answered {response.status_code}")
        if response.status_code >= 400:
            raise PushRejected(RejectionCode.REJECTED, response.text[:300])
        return response
