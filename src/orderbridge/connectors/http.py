"""HTTP plumbing the REST and GraphQL connectors share: one ``httpx`` client per connector,
and the translation of whatever HTTP does into the port's two errors.

- Transport errors and timeouts        -> ``PushRetryable`` (the platform may not have
  seen the request, or may have acted on it: the push job's ``find_order`` settles which)
- 429                                  -> ``PushRetryable`` with ``Retry-After`` (or the
  platform's own hint, which the connector passes as ``retry_after``)
- 5xx                                  -> ``PushRetryable``
- 401 / 403                            -> ``PushRejected(AUTH_FAILED / PERMISSION_DENIED)``
- a body that is not the JSON we asked for -> ``PushRejected(INVALID_RESPONSE)``, or
  ``PushRetryable`` where the request may have changed something (``outcome_unknown``)

Platform-specific answers (field errors, GraphQL ``userErrors``) stay in each connector;
``raise_for_status`` only handles what every platform means the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from orderbridge.connectors.port import (
    ConnectionSettings,
    PushRejected,
    PushRetryable,
    RejectionCode,
)
from orderbridge.webhooks.policy import parse_retry_after

USER_AGENT = "orderbridge-plug-and-play"
# How much of a platform's answer goes into an error's detail (and so the push log).
EXCERPT_CHARS = 300


def build_client(
    settings: ConnectionSettings,
    *,
    base_url: str,
    headers: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """The connector's client: the connection's timeouts, JSON in and out, no redirects
    (a platform API that redirects a POST is misconfigured, and following it could send
    credentials elsewhere)."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **headers,
        },
        timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
        follow_redirects=False,
        transport=transport,
    )


async def send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send, turning every ``httpx`` failure into ``PushRetryable``."""
    try:
        return await client.send(request)
    except httpx.TimeoutException as exc:
        raise PushRetryable(
            f"{request.method} {request.url.path} timed out ({type(exc).__name__})"
        ) from exc
    except httpx.HTTPError as exc:
        raise PushRetryable(
            f"{request.method} {request.url.path} failed: {type(exc).__name__}: {exc}"
        ) from exc


def raise_for_status(response: httpx.Response, *, retry_after: float | None = None) -> None:
    """Raise the port error for the statuses every platform means the same way; 2xx and
    the other 4xx (the platform's own refusals) are left to the connector."""
    status = response.status_code
    code = str(status)
    where = f"{response.request.method} {response.request.url.path}"
    if status == 429:
        wait = retry_after if retry_after is not None else retry_after_header(response)
        raise PushRetryable(f"{where}: rate limited (429)", retry_after=wait, platform_code=code)
    if status >= 500:
        raise PushRetryable(
            f"{where}: server error {status}: {excerpt(response)}", platform_code=code
        )
    if status == 401:
        raise PushRejected(
            RejectionCode.AUTH_FAILED,
            f"{where}: credentials refused (401): {excerpt(response)}",
            platform_code=code,
        )
    if status == 403:
        raise PushRejected(
            RejectionCode.PERMISSION_DENIED,
            f"{where}: permission denied (403): {excerpt(response)}",
            platform_code=code,
        )


def retry_after_header(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds, a decimal, or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return parse_retry_after(value, datetime.now(UTC))
    return max(0.0, seconds)


def decode_json(response: httpx.Response, *, outcome_unknown: bool = False) -> Any:
    """The body as JSON, numbers with a fraction as ``Decimal`` so amounts stay exact.

    ``outcome_unknown``: the request may have changed something on the platform (an
    order create), so an unreadable answer is retryable; the retry's ``find_order``
    tells whether it happened."""
    try:
        return json.loads(response.content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        detail = (
            f"{response.request.method} {response.request.url.path}: unreadable answer "
            f"({response.status_code}, {response.headers.get('Content-Type', 'no type')}): "
            f"{excerpt(response)}"
        )
        if outcome_unknown:
            raise PushRetryable(detail, platform_code=str(response.status_code)) from exc
        raise PushRejected(
            RejectionCode.INVALID_RESPONSE, detail, platform_code=str(response.status_code)
        ) from exc


def unexpected(response: httpx.Response, *, outcome_unknown: bool = False) -> Exception:
    """The error for an answer of the wrong shape (the JSON parsed, but not what the
    platform documents): ``raise unexpected(response)`` from a ``KeyError``/``TypeError``."""
    detail = (
        f"{response.request.method} {response.request.url.path}: unexpected answer "
        f"({response.status_code}): {excerpt(response)}"
    )
    if outcome_unknown:
        return PushRetryable(detail, platform_code=str(response.status_code))
    return PushRejected(
        RejectionCode.INVALID_RESPONSE, detail, platform_code=str(response.status_code)
    )


def excerpt(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"
