"""The PrestaShop webservice as the connector speaks it: Basic auth with the key, JSON
answers (``output_format=JSON``), XML writes, ``filter[...]``/``display`` lists, and
PrestaShop's ``{"errors": [...]}`` bodies turned into the port's errors. The order flow is
in ``connectors.prestashop``."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from orderbridge.connectors import http
from orderbridge.connectors.port import (
    ConnectionSettings,
    PushRejected,
    PushRetryable,
    RejectionCode,
)

Row = Mapping[str, Any]
Associations = Mapping[str, tuple[str, Sequence[Mapping[str, Any]]]]


class Webservice:
    """One shop's webservice, through one ``httpx`` client."""

    def __init__(
        self, settings: ConnectionSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        root = settings.base_url.rstrip("/").removesuffix("/api")
        self._client = http.build_client(
            settings, base_url=f"{root}/api", headers={}, transport=transport
        )
        self._client.auth = httpx.BasicAuth(settings.credentials.get("api_key", ""), "")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def one(self, resource: str, filters: Mapping[str, str], display: str) -> Row | None:
        rows = await self.rows(resource, filters, display, limit=1)
        return rows[0] if rows else None

    async def rows(
        self, resource: str, filters: Mapping[str, str], display: str, *, limit: int = 100
    ) -> list[Row]:
        params = {f"filter[{key}]": f"[{value}]" for key, value in filters.items()}
        params.update({"display": f"[{display}]", "limit": str(limit)})
        answer = await self.call("GET", f"/{resource}", params=params)
        if answer == []:  # PrestaShop writes an empty list as [], not {"orders": []}
            return []
        rows = answer.get(resource) if isinstance(answer, dict) else None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise PushRejected(
                RejectionCode.INVALID_RESPONSE, f"GET /api/{resource}: unexpected {answer!r:.200}"
            )
        return rows

    async def create(
        self,
        resource: str,
        fields: Mapping[str, Any],
        associations: Associations | None = None,
        *,
        creating: bool = False,
        answer: bool = False,
    ) -> Any:
        """POST one object; its id (or, with ``answer``, the whole object)."""
        singular = SINGULAR[resource]
        body = await self.write(
            "POST", f"/{resource}", singular, fields, associations, creating=creating
        )
        try:
            created = body[singular]
            int(created["id"])
        except (KeyError, TypeError, ValueError):
            if creating:
                raise PushRetryable(
                    f"POST /api/{resource}: answer without an id; the retry looks it up"
                ) from None
            raise PushRejected(
                RejectionCode.INVALID_RESPONSE, f"POST /api/{resource}: unexpected {body!r:.200}"
            ) from None
        return created if answer else created["id"]

    async def write(
        self,
        method: str,
        path: str,
        singular: str,
        fields: Mapping[str, Any],
        associations: Associations | None = None,
        *,
        creating: bool = False,
    ) -> Any:
        return await self.call(
            method,
            path,
            params={},
            content=to_xml(singular, fields, associations or {}),
            creating=creating,
        )

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str],
        content: bytes | None = None,
        creating: bool = False,
    ) -> Any:
        request = self._client.build_request(
            method,
            path,
            params={**params, "output_format": "JSON"},
            content=content,
            headers={"Content-Type": "application/xml"} if content is not None else None,
        )
        response = await http.send(self._client, request)
        raise_for_answer(response)
        return http.decode_json(response, outcome_unknown=creating)


SINGULAR = {
    "carts": "cart",
    "customers": "customer",
    "addresses": "address",
    "specific_prices": "specific_price",
    "orders": "order",
    "order_histories": "order_history",
}


def to_xml(
    resource: str,
    fields: Mapping[str, Any],
    associations: Associations,
) -> bytes:
    """``<prestashop><resource>fields<associations>…</associations></resource></prestashop>``;
    ElementTree escapes the text."""
    root = ET.Element("prestashop", {"xmlns:xlink": "http://www.w3.org/1999/xlink"})
    node = ET.SubElement(root, resource)
    for name, value in fields.items():
        ET.SubElement(node, name).text = "" if value is None else str(value)
    if associations:
        linked = ET.SubElement(node, "associations")
        for name, (item_name, items) in associations.items():
            group = ET.SubElement(linked, name)
            for item in items:
                element = ET.SubElement(group, item_name)
                for key, value in item.items():
                    ET.SubElement(element, key).text = str(value)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data


# PrestaShop's messages (lower case) -> our codes; first match wins.
_MESSAGE_CODES: tuple[tuple[str, RejectionCode], ...] = (
    ("address->", RejectionCode.INVALID_ADDRESS),
    ("customer->email", RejectionCode.INVALID_CUSTOMER),
    ("customer->", RejectionCode.INVALID_CUSTOMER),
    ("carrier", RejectionCode.SHIPPING_UNAVAILABLE),
    ("currency", RejectionCode.CURRENCY_UNSUPPORTED),
    ("product", RejectionCode.PRODUCT_NOT_FOUND),
)


def error_messages(body: Any) -> str:
    """``{"errors": [{"code": 86, "message": "..."}]}`` -> one line."""
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return ""
    return "; ".join(
        f"{error.get('message', '')} (code {error.get('code')})"
        for error in body["errors"]
        if isinstance(error, dict)
    )


def raise_for_answer(response: httpx.Response) -> None:
    if response.status_code >= 500:
        # PrestaShop answers 500 for exceptions it did not expect, including "an order has
        # already been placed using this cart": retryable; the retry's find_order settles it.
        raise PushRetryable(
            f"{response.request.method} {response.request.url.path}: server error "
            f"{response.status_code}: {http.excerpt(response)}",
            platform_code=str(response.status_code),
        )
    http.raise_for_status(response)
    status = response.status_code
    if status < 400:
        return
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    message = error_messages(body)
    detail = (
        f"{response.request.method} {response.request.url.path}: "
        f"{message or http.excerpt(response)} ({status})"
    )
    lowered = message.lower()
    for needle, code in _MESSAGE_CODES:
        if needle in lowered:
            raise PushRejected(code, detail, platform_code=str(status))
    code = RejectionCode.NOT_FOUND if status == 404 else RejectionCode.REJECTED
    raise PushRejected(code, detail, platform_code=str(status))
