"""The custom endpoint: the merchant's own URL receives each order, signed like our webhooks.

The "custom integration" path for merchants whose platform has no connector. The wire
protocol (docs/plug-and-play.md has the body and examples):

- **create**: ``POST {base_url}`` with the order as JSON (``order_body``), signed per
  Standard Webhooks with the connection's ``signing_secret`` (``whsec_…``): headers
  ``webhook-id`` (``push_<order id>``, the same on every retry of the order, so the
  receiver can deduplicate), ``webhook-timestamp``, ``webhook-signature``. Any 2xx with
  ``{"order_id": "...", "order_number": "..."}`` is success; a receiver that already has
  the order answers the same way with the order it holds.
- **find**: ``GET {base_url}?order_id=<our order id>``, signed the same way over an empty
  body (``webhook-id`` ``find_<order id>``): 200 with the same body when the receiver
  holds that order, 404 with a JSON body when it does not. A 404 that is not JSON means
  the URL is wrong (``NOT_FOUND``).
- **refusals**: 409 or 422 with ``{"code": "out_of_stock", "detail": "...", "skus": [...]}``
  (``code`` one of ``connectors.port.RejectionCode``; another code is ``rejected``);
  401/403 are bad credentials; 429 (``Retry-After``) and 5xx are retried.
- **test connection**: a find for an id no order has (``0-0``): a 404 with JSON, or a
  200, means the endpoint is there and accepts our signature.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from orderbridge.clock import rfc3339
from orderbridge.connectors import http
from orderbridge.connectors.port import (
    ConnectionCheck,
    ConnectionSettings,
    PlatformOrder,
    PushAddress,
    PushError,
    PushOrder,
    PushRejected,
    RejectionCode,
)
from orderbridge.outbound.signing import Signer

PLATFORM = "custom"
# An order id no order has (contract §2: ids are <digits>-<digits>, numbers start at 1).
PROBE_ORDER_ID = "0-0"
_CODES = {code.value: code for code in RejectionCode}


class CustomEndpointConnector:
    platform = PLATFORM
    credential_fields: tuple[str, ...] = ("signing_secret",)
    option_fields: tuple[str, ...] = ()

    def __init__(
        self, settings: ConnectionSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        # Raises MalformedSecret (a ValueError) at once: the connection is refused when saved.
        self._signer = Signer([settings.credentials.get("signing_secret", "")])
        self.url = settings.base_url
        self._client = http.build_client(
            settings,
            base_url="",
            headers={"Content-Type": "application/json"},
            transport=transport,
        )

    async def create_order(self, order: PushOrder) -> PlatformOrder:
        body = json.dumps(order_body(order), separators=(",", ":")).encode()
        request = self._client.build_request(
            "POST", self.url, content=body, headers=self._signed(f"push_{order.order_id}", body)
        )
        response = await http.send(self._client, request)
        _raise_for_refusal(response)
        if not response.is_success:
            raise _unexpected_status(response)
        return _platform_order(response, outcome_unknown=True)

    async def find_order(self, order_id: str) -> PlatformOrder | None:
        request = self._client.build_request(
            "GET",
            self.url,
            params={"order_id": order_id},
            headers=self._signed(f"find_{order_id}", b""),
        )
        response = await http.send(self._client, request)
        if response.status_code == 404:
            if not isinstance(_json_or_none(response), dict):
                raise PushRejected(
                    RejectionCode.NOT_FOUND,
                    f"GET {self.url} answered 404 without a JSON body: is the URL right?",
                    platform_code="404",
                )
            return None
        _raise_for_refusal(response)
        if response.status_code != 200:
            raise _unexpected_status(response)
        return _platform_order(response, outcome_unknown=False)

    async def test_connection(self) -> ConnectionCheck:
        try:
            await self.find_order(PROBE_ORDER_ID)
        except PushRejected as rejected:
            return ConnectionCheck(False, rejected.detail, rejected.code)
        except PushError as error:
            return ConnectionCheck(False, error.detail)
        return ConnectionCheck(True, f"{self.url} answered and accepted our signature")

    async def aclose(self) -> None:
        await self._client.aclose()

    def _signed(self, msg_id: str, body: bytes) -> dict[str, str]:
        # webhook ids may not hold "."; our order ids never do.
        return self._signer.headers(msg_id, int(time.time()), body)


def order_body(order: PushOrder) -> dict[str, Any]:
    """The JSON the endpoint receives; amounts are strings in ``currency``."""
    return {
        "type": "order.push",
        "order_id": order.order_id,
        "store_id": order.store_id,
        "placed_at": rfc3339(order.placed_at),
        "currency": order.currency,
        "buyer_currency": order.buyer_currency,
        "exchange_rate": str(order.exchange_rate),
        "language": order.language,
        "customer": {
            "email": order.email,
            "first_name": order.first_name,
            "last_name": order.last_name,
            "phone": order.phone,
        },
        "billing_address": _address(order.billing),
        "shipping_address": _address(order.shipping_address),
        "items": [
            {
                "sku": line.sku,
                "name": line.name,
                "options": dict(line.options),
                "quantity": line.quantity,
                "unit_price": str(line.unit_price),
                "discount": str(line.discount),
                "tax_rate": str(line.tax_rate),
                "tax": str(line.tax),
                "total": str(line.total),
            }
            for line in order.lines
        ],
        "shipping": {
            "method": order.shipping.method,
            "carrier": order.shipping.carrier,
            "price": str(order.shipping.price),
            "tax": str(order.shipping.tax),
        },
        "totals": {name: str(getattr(order.totals, name)) for name in _TOTALS},
        "payment": {"method": order.payment_method, "reference": order.payment_reference},
        "source_name": order.source_name,
        "note": order.note,
        "customer_note": order.customer_note,
    }


_TOTALS = ("items", "discount", "shipping", "tax", "duties", "total")


def _address(address: PushAddress) -> dict[str, str | None]:
    return {
        "first_name": address.first_name,
        "last_name": address.last_name,
        "company": address.company,
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "postal_code": address.postal_code,
        "region": address.region,
        "country": address.country,
        "phone": address.phone,
    }


def _raise_for_refusal(response: httpx.Response) -> None:
    http.raise_for_status(response)
    if response.status_code not in (409, 422):
        return
    answer = _json_or_none(response)
    fields: Mapping[str, Any] = answer if isinstance(answer, dict) else {}
    code = _CODES.get(str(fields.get("code")), RejectionCode.REJECTED)
    detail = fields.get("detail")
    skus = fields.get("skus")
    raise PushRejected(
        code,
        str(detail) if detail else f"the endpoint refused the order ({response.status_code})",
        platform_code=str(fields.get("code") or response.status_code),
        skus=tuple(str(s) for s in skus) if isinstance(skus, list) else (),
    )


def _unexpected_status(response: httpx.Response) -> PushRejected:
    return PushRejected(
        RejectionCode.REJECTED,
        f"{response.request.method} {response.request.url.path}: unexpected status "
        f"{response.status_code}: {http.excerpt(response)}",
        platform_code=str(response.status_code),
    )


def _platform_order(response: httpx.Response, *, outcome_unknown: bool) -> PlatformOrder:
    answer = http.decode_json(response, outcome_unknown=outcome_unknown)
    try:
        order_id, number = answer["order_id"], answer["order_number"]
    except (KeyError, TypeError, IndexError):
        raise http.unexpected(response, outcome_unknown=outcome_unknown) from None
    if not isinstance(order_id, str | int) or not isinstance(number, str | int):
        raise http.unexpected(response, outcome_unknown=outcome_unknown)
    if isinstance(order_id, bool) or isinstance(number, bool) or not str(order_id):
        raise http.unexpected(response, outcome_unknown=outcome_unknown)
    return PlatformOrder(id=str(order_id)[:64], number=str(number)[:64])


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return None


CONNECTOR = CustomEndpointConnector
