"""Magento 2's REST API as the connector speaks it: ``/rest/{store}/V1``, the admin token
(an integration access token, or one fetched for an admin user and fetched again once on
401), ``searchCriteria`` filters, and Magento's ``{"message", "parameters"}`` errors turned
into the port's. The order mapping is in ``connectors.magento``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from orderbridge.connectors import http
from orderbridge.connectors.port import ConnectionSettings, PushRejected, RejectionCode


class MagentoRest:
    """One store view's REST API, through one ``httpx`` client."""

    def __init__(
        self, settings: ConnectionSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        root = settings.base_url.rstrip("/").removesuffix("/rest")
        store_code = settings.options.get("store_code", "default")
        self._settings = settings
        self._token = settings.credentials.get("access_token")
        self._client = http.build_client(
            settings,
            base_url=f"{root}/rest/{quote(store_code, safe='')}/V1",
            headers={"Content-Type": "application/json"},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        creating: bool = False,
    ) -> Any:
        """One REST call with the admin token (fetched, and fetched again once on 401 when
        the connection has a username and password); Magento's errors -> port errors."""
        refreshed = False
        while True:
            token = await self._admin_token()
            request = self._client.build_request(
                method,
                path,
                params=params,
                content=None if body is None else json.dumps(body, default=str),
                headers={"Authorization": f"Bearer {token}"},
            )
            response = await http.send(self._client, request)
            if response.status_code == 401 and self._can_log_in() and not refreshed:
                self._token, refreshed = None, True
                continue
            break
        raise_for_answer(response)
        return http.decode_json(response, outcome_unknown=creating)

    def _can_log_in(self) -> bool:
        credentials = self._settings.credentials
        return bool(credentials.get("username") and credentials.get("password"))

    async def _admin_token(self) -> str:
        if self._token:
            return self._token
        credentials = self._settings.credentials
        if not self._can_log_in():
            raise PushRejected(
                RejectionCode.AUTH_FAILED,
                "The Magento connection needs an access_token, or a username and password",
            )
        request = self._client.build_request(
            "POST",
            "/integration/admin/token",
            content=json.dumps(
                {"username": credentials["username"], "password": credentials["password"]}
            ),
        )
        response = await http.send(self._client, request)
        raise_for_answer(response)
        token = http.decode_json(response)
        if not isinstance(token, str) or not token:
            raise http.unexpected(response)
        self._token = token
        return token


def search_criteria(field: str, value: str, condition: str) -> dict[str, str]:
    prefix = "searchCriteria[filter_groups][0][filters][0]"
    return {
        f"{prefix}[field]": field,
        f"{prefix}[value]": value,
        f"{prefix}[condition_type]": condition,
    }


# Magento's messages (placeholders filled, lower case) -> our codes; first match wins.
_MESSAGE_CODES: tuple[tuple[str, RejectionCode], ...] = (
    ("qty is not available", RejectionCode.OUT_OF_STOCK),
    ("out of stock", RejectionCode.OUT_OF_STOCK),
    ("product that was requested doesn't exist", RejectionCode.PRODUCT_NOT_FOUND),
    ("sku doesn't exist", RejectionCode.PRODUCT_NOT_FOUND),
    ("address", RejectionCode.INVALID_ADDRESS),
    ("email", RejectionCode.INVALID_CUSTOMER),
    ("carrier", RejectionCode.SHIPPING_UNAVAILABLE),
    ("shipping method", RejectionCode.SHIPPING_UNAVAILABLE),
    ("currency", RejectionCode.CURRENCY_UNSUPPORTED),
    ("payment method", RejectionCode.REJECTED),
)
_ADDRESS_FIELDS = {
    "firstname",
    "lastname",
    "street",
    "city",
    "postcode",
    "telephone",
    "country_id",
    "region",
}


def error_message(body: Any) -> tuple[str, str | None]:
    """Magento's ``message`` with its ``%1`` / ``%name`` placeholders filled, and the
    field the error names (``parameters.fieldName``) if any."""
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return "", None
    message: str = body["message"]
    parameters = body.get("parameters")
    named: dict[str, Any] = {}
    if isinstance(parameters, list):
        named = {str(i + 1): value for i, value in enumerate(parameters)}
    elif isinstance(parameters, dict):
        named = parameters
    for key in sorted(named, key=len, reverse=True):
        message = message.replace(f"%{key}", str(named[key]))
    field = named.get("fieldName")
    return message, field if isinstance(field, str) else None


def raise_for_answer(response: httpx.Response) -> None:
    http.raise_for_status(response)
    status = response.status_code
    if status < 400:
        return
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
    message, field = error_message(body)
    where = f"{response.request.method} {response.request.url.path}"
    detail = f"{where}: {message or http.excerpt(response)} ({status})"
    if field in _ADDRESS_FIELDS:
        raise PushRejected(RejectionCode.INVALID_ADDRESS, detail, platform_code=str(status))
    lowered = message.lower()
    for needle, code in _MESSAGE_CODES:
        if needle in lowered:
            raise PushRejected(code, detail, platform_code=str(status))
    if status == 404:
        code = (
            RejectionCode.NOT_FOUND if "route" in lowered or not message else RejectionCode.REJECTED
        )
        raise PushRejected(code, detail, platform_code=str(status))
    raise PushRejected(RejectionCode.REJECTED, detail, platform_code=str(status))
