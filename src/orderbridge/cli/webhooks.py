"""``orderbridge webhooks …``: endpoints, secrets and the delivery log from the shell. The
same use cases as ``/v2/webhooks/{store_id}``, rendered the same way."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import click

from orderbridge.bootstrap import Container
from orderbridge.cli.common import emit, run
from orderbridge.ids import parse_order_id
from orderbridge.webhooks.render import render_attempt, render_delivery, render_endpoint
from orderbridge.webhooks.repository import events_by_id
from orderbridge.webhooks.schemas import EndpointCreate, EndpointUpdate
from orderbridge.webhooks.service import DeliveryFilter

STORE = click.option("--store", "store_id", required=True, help="store id")
JSON = click.option("--json", "as_json", is_flag=True, help="machine-readable output")


def _print_rows(as_json: bool, rows: list[dict[str, Any]], line: str) -> None:
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(line.format(**row))


@click.group()
def webhooks() -> None:
    """Webhook endpoints and deliveries."""


@webhooks.command("create")
@STORE
@click.option("--url", required=True)
@click.option("--event", "events", multiple=True, help="event name to send (repeat); default all")
@click.option("--description", default=None)
@click.option("--ordered", is_flag=True, help="one at a time, in feed order")
@click.option("--max-concurrency", type=int, default=10, show_default=True)
@click.option("--rate-limit", type=float, default=None, help="requests per second at most")
@JSON
def create(
    store_id: str,
    url: str,
    events: tuple[str, ...],
    description: str | None,
    ordered: bool,
    max_concurrency: int,
    rate_limit: float | None,
    as_json: bool,
) -> None:
    """Subscribe URL to the store's events; prints the endpoint id and its secret."""
    spec = _validated(
        EndpointCreate,
        url=url,
        events=list(events),
        description=description,
        ordered=ordered,
        max_concurrency=max_concurrency,
        rate_limit=rate_limit,
    )

    async def work(container: Container) -> dict[str, Any]:
        async with container.db.transaction() as session:
            endpoint, secret = await container.webhooks.create_endpoint(session, store_id, spec)
            return {**render_endpoint(endpoint), "secret": secret}

    data = run(work)
    emit(as_json, data, f"{data['id']}\n{data['secret']}")


@webhooks.command("list")
@STORE
@JSON
def list_endpoints(store_id: str, as_json: bool) -> None:
    async def work(container: Container) -> list[dict[str, Any]]:
        async with container.db.reader() as session:
            return [
                render_endpoint(e)
                for e in await container.webhooks.list_endpoints(session, store_id)
            ]

    rows = run(work)
    for row in rows:
        row["state"] = "enabled" if row["enabled"] else f"disabled ({row['disabled_reason']})"
        row["filter"] = ",".join(row["events"]) or "all events"
    _print_rows(as_json, rows, "{id}  {state:22} {url}  [{filter}]")


@webhooks.command("update")
@click.argument("endpoint_id")
@STORE
@click.option("--url", default=None)
@click.option("--event", "events", multiple=True, help="replace the event filter")
@click.option("--all-events", is_flag=True, help="clear the event filter")
@click.option("--description", default=None)
@click.option("--enable/--disable", "enabled", default=None)
@click.option("--ordered/--unordered", "ordered", default=None)
@click.option("--max-concurrency", type=int, default=None)
@click.option("--rate-limit", type=float, default=None)
@JSON
def update(
    endpoint_id: str,
    store_id: str,
    url: str | None,
    events: tuple[str, ...],
    all_events: bool,
    description: str | None,
    enabled: bool | None,
    ordered: bool | None,
    max_concurrency: int | None,
    rate_limit: float | None,
    as_json: bool,
) -> None:
    """Change an endpoint; --enable brings a disabled one back."""
    fields: dict[str, Any] = {
        name: value
        for name, value in (
            ("url", url),
            ("description", description),
            ("enabled", enabled),
            ("ordered", ordered),
            ("max_concurrency", max_concurrency),
            ("rate_limit", rate_limit),
        )
        if value is not None
    }
    if events or all_events:
        fields["events"] = [] if all_events else list(events)
    change = _validated(EndpointUpdate, **fields)

    async def work(container: Container) -> dict[str, Any]:
        async with container.db.transaction() as session:
            return render_endpoint(
                await container.webhooks.update_endpoint(session, store_id, endpoint_id, change)
            )

    data = run(work)
    emit(as_json, data, f"{data['id']} updated")


@webhooks.command("delete")
@click.argument("endpoint_id")
@STORE
def delete(endpoint_id: str, store_id: str) -> None:
    async def work(container: Container) -> None:
        async with container.db.transaction() as session:
            await container.webhooks.delete_endpoint(session, store_id, endpoint_id)

    run(work)
    click.echo(f"{endpoint_id} deleted")


@webhooks.command("reveal")
@click.argument("endpoint_id")
@STORE
@JSON
def reveal(endpoint_id: str, store_id: str, as_json: bool) -> None:
    """Print the endpoint's live signing secrets, newest first."""

    async def work(container: Container) -> list[dict[str, Any]]:
        async with container.db.reader() as session:
            await container.webhooks.get_endpoint(session, store_id, endpoint_id)
            return [
                {"secret": s.secret, "expires_at": str(s.expires_at or "")}
                for s in await container.webhooks.live_secrets(session, endpoint_id)
            ]

    _print_rows(as_json, run(work), "{secret}  {expires_at}")


@webhooks.command("rotate")
@click.argument("endpoint_id")
@STORE
@click.option("--overlap-hours", type=float, default=None, help="default 24")
@JSON
def rotate(endpoint_id: str, store_id: str, overlap_hours: float | None, as_json: bool) -> None:
    """Make a new secret; the old one keeps signing during the overlap."""

    async def work(container: Container) -> dict[str, str]:
        overlap = timedelta(hours=overlap_hours) if overlap_hours is not None else None
        async with container.db.transaction() as session:
            secret = await container.webhooks.rotate_secret(session, store_id, endpoint_id, overlap)
        return {"endpoint_id": endpoint_id, "secret": secret}

    data = run(work)
    emit(as_json, data, data["secret"])


@webhooks.command("deliveries")
@STORE
@click.option("--endpoint", "endpoint_id", default=None)
@click.option("--order", "order_id", default=None, help="an order id, e.g. 310678-936140")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["pending", "sending", "succeeded", "failed"]),
)
@click.option("--limit", type=int, default=50, show_default=True)
@JSON
def deliveries(
    store_id: str,
    endpoint_id: str | None,
    order_id: str | None,
    statuses: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """The delivery log, newest first."""
    number = None
    if order_id is not None:
        parsed = parse_order_id(order_id)
        if parsed is None or parsed[0] != store_id:
            raise click.BadParameter("not an order id of this store", param_hint="--order")
        number = parsed[1]

    async def work(container: Container) -> list[dict[str, Any]]:
        query = DeliveryFilter(store_id, endpoint_id, number, statuses, None, limit)
        async with container.db.reader() as session:
            found = await container.webhooks.list_deliveries(session, query)
            events = await events_by_id(session, {d.event_id for d in found})
        return [render_delivery(d, events.get(d.event_id)) for d in found]

    _print_rows(
        as_json,
        run(work),
        "{id}  {status:9} {event_name:16} {event_id}  attempts={attempts} "
        "last={last_status_code}  {endpoint_id}",
    )


@webhooks.command("delivery")
@click.argument("delivery_id", type=int)
@STORE
@JSON
def delivery(delivery_id: int, store_id: str, as_json: bool) -> None:
    """One delivery with every attempt."""

    async def work(container: Container) -> dict[str, Any]:
        async with container.db.reader() as session:
            found, event, attempts = await container.webhooks.get_delivery(
                session, store_id, delivery_id
            )
        return {
            **render_delivery(found, event),
            "attempt_log": [render_attempt(a) for a in attempts],
        }

    data = run(work)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{data['id']}  {data['status']}  {data['event_name']}  {data['event_id']}")
    for attempt in data["attempt_log"]:
        click.echo(
            f"  #{attempt['attempt']} {attempt['attempted_at']} "
            f"{attempt['status_code'] or '-'} {attempt['duration_ms']} ms "
            f"{attempt['error'] or ''}"
        )


@webhooks.command("resend")
@click.argument("delivery_id", type=int)
@STORE
def resend(delivery_id: int, store_id: str) -> None:
    async def work(container: Container) -> None:
        async with container.db.transaction() as session:
            await container.webhooks.resend(session, store_id, delivery_id)

    run(work)
    click.echo(f"delivery {delivery_id} queued")


@webhooks.command("recover")
@click.argument("endpoint_id")
@STORE
@click.option("--since", required=True, help="RFC 3339 time, e.g. 2026-11-20T00:00:00Z")
@JSON
def recover(endpoint_id: str, store_id: str, since: str, as_json: bool) -> None:
    """Send again every failed delivery since a time, and the events missed meanwhile."""
    try:
        moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("an RFC 3339 time", param_hint="--since") from None
    if moment.tzinfo is None:
        raise click.BadParameter("needs a time zone (e.g. Z)", param_hint="--since")

    async def work(container: Container) -> dict[str, int]:
        async with container.db.transaction() as session:
            requeued, created = await container.webhooks.recover_since(
                session, store_id, endpoint_id, moment
            )
        return {"requeued": requeued, "created": created}

    data = run(work)
    emit(as_json, data, f"requeued {data['requeued']}, created {data['created']}")


def _validated(model: Any, **fields: Any) -> Any:
    from pydantic import ValidationError

    try:
        return model.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise click.UsageError(problems) from None
