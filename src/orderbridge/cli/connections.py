"""``orderbridge connections …`` (a store's plug & play connection) and ``orderbridge push …``
(an order's push log, retry push). The same use cases as ``/v2/connections/{store_id}`` and
``/v2/orders/{store_id}/{order_id}/push``, rendered the same way."""

from __future__ import annotations

from typing import Any

import click
from pydantic import ValidationError

from orderbridge.bootstrap import Container
from orderbridge.cli.common import emit, run
from orderbridge.connectors.push_log import render_log
from orderbridge.connectors.schemas import ConnectionIn
from orderbridge.outbound import signing

STORE = click.option("--store", "store_id", required=True, help="store id")
JSON = click.option("--json", "as_json", is_flag=True, help="machine-readable output")


def _pairs(values: tuple[str, ...], what: str, *, secret: bool) -> dict[str, str]:
    """``NAME=VALUE`` pairs; a bare ``NAME`` is asked for (hidden for credentials), so that
    secrets need not be typed on the command line."""
    pairs = {}
    for text in values:
        name, sep, value = text.partition("=")
        if not sep:
            value = click.prompt(f"{what} {name}", hide_input=secret)
        pairs[name.strip()] = value
    return pairs


def _text(connection: dict[str, Any]) -> str:
    test = connection["last_test"]
    tested = "never tested"
    if test is not None:
        tested = f"tested {test['at']}: {'ok' if test['ok'] else 'FAILED'} {test['detail'] or ''}"
    return "\n".join(
        [
            f"{connection['platform']}  {connection['base_url']}  "
            f"{'enabled' if connection['enabled'] else 'DISABLED'}",
            f"  credentials set   {', '.join(connection['credentials_set']) or '-'}",
            f"  options           {connection['options'] or '-'}",
            f"  failure policy    {connection['failure_policy']}, "
            f"{connection['max_attempts']} attempts, waits {connection['retry_delays']} s",
            f"  currency          {connection['currency_mode']}",
            f"  {tested.strip()}",
        ]
    )


@click.group()
def connections() -> None:
    """Plug & play: the store's connection to its e-commerce platform."""


@connections.command("set")
@STORE
@click.option("--platform", required=True, help="vendure, shopify, ..., custom")
@click.option("--url", "base_url", required=True, help="the platform's base URL")
@click.option(
    "--credential",
    "credentials",
    multiple=True,
    metavar="NAME[=VALUE]",
    help="a credential field (repeat); without =VALUE it is asked for, hidden",
)
@click.option("--option", "options", multiple=True, metavar="NAME=VALUE")
@click.option(
    "--generate-secret",
    is_flag=True,
    help="custom endpoint: make a new signing secret (printed once)",
)
@click.option("--failure-policy", type=click.Choice(["notify", "cancel"]), default="notify")
@click.option("--max-attempts", type=int, default=None)
@click.option("--retry-delays", default=None, help="seconds after each failed attempt: 60,300")
@click.option("--currency", "currency_mode", type=click.Choice(["base", "buyer"]), default="base")
@click.option("--timeout", type=float, default=None, help="seconds per platform request")
@click.option("--disabled", is_flag=True, help="save it without pushing yet")
@JSON
def set_connection(
    store_id: str,
    platform: str,
    base_url: str,
    credentials: tuple[str, ...],
    options: tuple[str, ...],
    generate_secret: bool,
    failure_policy: str,
    max_attempts: int | None,
    retry_delays: str | None,
    currency_mode: str,
    timeout: float | None,
    disabled: bool,
    as_json: bool,
) -> None:
    """Create or replace the store's connection. Credentials left out keep their stored
    values while the platform stays the same."""
    fields: dict[str, Any] = {
        "platform": platform,
        "base_url": base_url,
        "credentials": _pairs(credentials, "credential", secret=True),
        "options": _pairs(options, "option", secret=False),
        "failure_policy": failure_policy,
        "currency_mode": currency_mode,
        "enabled": not disabled,
    }
    secret = None
    if generate_secret:
        secret = fields["credentials"]["signing_secret"] = signing.generate_secret()
    if max_attempts is not None:
        fields["max_attempts"] = max_attempts
    if retry_delays is not None:
        fields["retry_delays"] = [part.strip() for part in retry_delays.split(",") if part.strip()]
    if timeout is not None:
        fields["timeout"] = timeout
    try:
        spec = ConnectionIn.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'connection'}: {e['msg']}" for e in error.errors()
        )
        raise click.UsageError(problems) from None

    async def work(container: Container) -> dict[str, Any]:
        async with container.db.transaction() as session:
            connection, _ = await container.connections.put(session, store_id, spec)
            return container.connections.render(connection)

    connection = run(work)
    text = _text(connection)
    if secret is not None:
        connection = {**connection, "signing_secret": secret}
        text += f"\n  signing secret    {secret}   (shown once: verify our signatures with it)"
    emit(as_json, connection, text)


@connections.command("show")
@STORE
@JSON
def show_connection(store_id: str, as_json: bool) -> None:
    """The store's connection (credential values are never shown)."""

    async def work(container: Container) -> dict[str, Any]:
        async with container.db.reader() as session:
            return container.connections.render(await container.connections.get(session, store_id))

    connection = run(work)
    emit(as_json, connection, _text(connection))


@connections.command("test")
@STORE
@JSON
def test_connection(store_id: str, as_json: bool) -> None:
    """Reach and authenticate against the platform now; the result is kept."""

    async def work(container: Container) -> dict[str, Any]:
        return container.connections.render(
            await container.connections.test(container.db, store_id)
        )

    connection = run(work)
    emit(as_json, connection, _text(connection))
    if not connection["last_test"]["ok"]:
        raise SystemExit(1)


@connections.command("delete")
@STORE
@JSON
def delete_connection(store_id: str, as_json: bool) -> None:
    """Disconnect the store; READY orders are left for the merchant to accept."""

    async def work(container: Container) -> None:
        async with container.db.transaction() as session:
            await container.connections.delete(session, store_id)

    run(work)
    emit(as_json, {"store_id": store_id, "deleted": True}, f"store {store_id} disconnected")


@connections.command("platforms")
@JSON
def list_platforms(as_json: bool) -> None:
    """The platforms available in this installation, with their fields."""

    async def work(container: Container) -> list[dict[str, Any]]:
        return container.connections.platforms()

    platforms = run(work)
    lines = [
        f"{p['platform']:12} credentials: {', '.join(p['credential_fields']) or '-'}"
        f"   options: {', '.join(p['option_fields']) or '-'}"
        for p in platforms
    ]
    emit(as_json, {"platforms": platforms}, "\n".join(lines))


# ---- push -------------------------------------------------------------------------------------


def _log_text(log: dict[str, Any]) -> str:
    lines = [f"{log['order_id']}  {log['status']}  push: {log['push_status'] or 'none'}"]
    for a in log["attempts"]:
        platform = f" → {a['platform_order_number']}" if a["platform_order_number"] else ""
        lines.append(
            f"  run {a['run']} #{a['attempt']}  {a['started_at']}  {a['action']:6} "
            f"{a['outcome']:9} {a['duration_ms']:>6} ms  {a['code'] or ''}{platform}"
            f"  {a['detail'] or ''}".rstrip()
        )
    return "\n".join(lines)


@click.group()
def push() -> None:
    """Plug & play pushes of orders into the store's platform."""


@push.command("log")
@click.argument("order_id")
@STORE
@JSON
def push_log(order_id: str, store_id: str, as_json: bool) -> None:
    """Every push attempt of ORDER_ID."""

    async def work(container: Container) -> dict[str, Any]:
        async with container.db.reader() as session:
            order, attempts = await container.pushes.log(session, store_id, order_id)
            return render_log(order, attempts)

    log = run(work)
    emit(as_json, log, _log_text(log))


@push.command("retry")
@click.argument("order_id")
@STORE
@JSON
def push_retry(order_id: str, store_id: str, as_json: bool) -> None:
    """Push READY order ORDER_ID again (a new run of attempts, made by the worker)."""

    async def work(container: Container) -> dict[str, Any]:
        async with container.db.transaction() as session:
            await container.pushes.retry(session, store_id, order_id)
            order, attempts = await container.pushes.log(session, store_id, order_id)
            return render_log(order, attempts)

    log = run(work)
    emit(as_json, log, _log_text(log))
