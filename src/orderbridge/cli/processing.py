"""``orderbridge processing|review|payments …``: a store's processing configuration, the fraud
review queue and deferred-payment confirmations from the shell. The same use cases as the
API (``/v2/stores/{id}/processing``, ``/v2/reviews/{id}``, ``/v2/payments/{id}``), rendered the
same way."""

from __future__ import annotations

import getpass
import json
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO

import click

from orderbridge.bootstrap import Container
from orderbridge.cli.common import emit, run
from orderbridge.errors import NotFound, ValidationFailed
from orderbridge.orders.lifecycle import Actor, ActorKind
from orderbridge.processing import configs
from orderbridge.processing.confirmations import confirm_payment
from orderbridge.processing.render import (
    render_config,
    render_confirmation,
    render_decision,
    render_review,
)
from orderbridge.processing.reviews import ReviewDecision, decide, pending_reviews
from orderbridge.stores import service as stores

STORE = click.option("--store", "store_id", required=True, help="store id")
JSON = click.option("--json", "as_json", is_flag=True, help="machine-readable output")


def _operator() -> Actor:
    """Who acts on the command line: the operator's login, as far as the system knows it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(ActorKind.MERCHANT, f"cli:{user}"[:64])


async def _require_store(container: Container, store_id: str) -> None:
    async with container.db.reader() as session:
        if store_id not in {s.id for s in await stores.list_stores(session)}:
            raise NotFound(f"no store {store_id}", code="store_not_found")


# ---- processing ---------------------------------------------------------------------------


@click.group()
def processing() -> None:
    """A store's processing configuration (payment, prohibited goods, fraud)."""


@processing.command("show")
@STORE
@JSON
def show(store_id: str, as_json: bool) -> None:
    """Print the current configuration and its version (0: the built-in defaults)."""

    async def work(container: Container) -> dict[str, Any]:
        await _require_store(container, store_id)
        async with container.db.reader() as session:
            version, config = await configs.current(session, store_id)
        return render_config(store_id, version, config)

    data = run(work)
    text = f"version {data['version']}\n{json.dumps(data['config'], indent=2)}"
    emit(as_json, data, text)


@processing.command("set")
@STORE
@click.option(
    "--file",
    "source",
    required=True,
    type=click.File("r"),
    help="the configuration as JSON ('-': standard input); omitted fields take defaults",
)
@JSON
def set_config(store_id: str, source: TextIO, as_json: bool) -> None:
    """Replace the configuration: a new version, used by orders received from now on."""
    try:
        document = json.loads(source.read())
    except ValueError as error:
        raise click.ClickException(f"{source.name}: not JSON ({error})") from None
    if not isinstance(document, dict):
        raise click.ClickException(f"{source.name}: the configuration is a JSON object")
    try:
        config = configs.parse(document)
    except ValidationFailed as error:
        fields = "; ".join(f"{e.path}: {e.message}" for e in error.errors)
        raise click.ClickException(f"{error.code}: {fields}") from None

    async def work(container: Container) -> dict[str, Any]:
        await _require_store(container, store_id)
        async with container.db.transaction() as session:
            version, created = await configs.replace(
                session, store_id, config, now=container.clock.now(), by=_operator().id
            )
        return {**render_config(store_id, version, config), "created": created}

    data = run(work)
    state = "saved as" if data["created"] else "unchanged, still"
    emit(as_json, data, f"{state} version {data['version']}")


# ---- review -------------------------------------------------------------------------------


@click.group()
def review() -> None:
    """The fraud review queue."""


@review.command("list")
@STORE
@JSON
def review_list(store_id: str, as_json: bool) -> None:
    """Orders held for a review, nearest deadline first."""

    async def work(container: Container) -> list[dict[str, Any]]:
        await _require_store(container, store_id)
        async with container.db.reader() as session:
            return [render_review(r) for r in await pending_reviews(session, store_id)]

    rows = run(work)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no order is waiting for a review")
    for row in rows:
        rules = ", ".join(hit["rule"] for hit in row["hits"]) or "-"
        click.echo(
            f"{row['order_id']}  score {row['score']}  {row['total']} {row['currency']}  "
            f"{row['customer_email']}  until {row['review_deadline']} "
            f"(then {row['on_deadline']})  {rules}"
        )


def _decision_command(decision: ReviewDecision) -> click.Command:
    @click.command(decision.value)
    @click.argument("order_id")
    @STORE
    @click.option("--note", default=None, help="why (kept on the order's timeline)")
    @JSON
    def command(order_id: str, store_id: str, note: str | None, as_json: bool) -> None:
        async def work(container: Container) -> dict[str, Any]:
            async with container.db.transaction() as session:
                decided = await decide(
                    session,
                    container.orders,
                    store_id,
                    order_id,
                    decision,
                    actor=_operator(),
                    note=note,
                    now=container.clock.now(),
                )
                return render_decision(decided.order)

        data = run(work)
        emit(as_json, data, f"{data['order_id']} {data['review_status']}; processing continues")

    command.help = f"{decision.value.capitalize()} an order held for review."
    return command


review.add_command(_decision_command(ReviewDecision.APPROVE))
review.add_command(_decision_command(ReviewDecision.REJECT))


# ---- payments -----------------------------------------------------------------------------


@click.group()
def payments() -> None:
    """Deferred payments (bank transfers)."""


@payments.command("confirm")
@click.argument("order_id")
@STORE
@click.option("--amount", required=True, help='the amount received, e.g. "49.90"')
@click.option("--reference", default=None, help="the bank's reference of the transfer")
@JSON
def confirm(
    order_id: str, store_id: str, amount: str, reference: str | None, as_json: bool
) -> None:
    """Record that the money of ORDER_ID's bank transfer arrived; processing continues."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise click.BadParameter("not a decimal number", param_hint="--amount") from None
    if not value.is_finite():
        raise click.BadParameter("not a decimal number", param_hint="--amount")

    async def work(container: Container) -> dict[str, Any]:
        async with container.db.transaction() as session:
            confirmed = await confirm_payment(
                session,
                container.orders,
                store_id,
                order_id,
                amount=value,
                reference=reference,
                actor=_operator(),
                now=container.clock.now(),
            )
            return {
                **render_confirmation(confirmed.order, confirmed.confirmation),
                "created": confirmed.changed,
            }

    data = run(work)
    state = "confirmed" if data["created"] else "already confirmed"
    emit(as_json, data, f"{data['order_id']}: {data['amount']} {data['currency']} {state}")
