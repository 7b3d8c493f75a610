"""``orderbridge refunds …``: refund a completed order, list an order's refunds. The same use
cases as ``/v2/orders/{store_id}/{order_id}/refunds``, rendered the same way."""

from __future__ import annotations

import json
from typing import Any

import click
from pydantic import ValidationError

from orderbridge.bootstrap import Container
from orderbridge.cli.common import emit, run
from orderbridge.orders.lifecycle import Actor
from orderbridge.refunds.schemas import RefundRequest, render_refund

STORE = click.option("--store", "store_id", required=True, help="store id")
JSON = click.option("--json", "as_json", is_flag=True, help="machine-readable output")


def _line(refund: dict[str, Any]) -> str:
    what = ", ".join(f"{i['item_id']}×{i['quantity']}" for i in refund["items"])
    if refund["shipping"]:
        what = f"{what}, shipping" if what else "shipping"
    return (
        f"{refund['id']}  {refund['kind']:12} {refund['status']:9} "
        f"{refund['amount']:>10} {refund['currency']}  {what or 'amount'}"
    )


@click.group()
def refunds() -> None:
    """Refunds of completed orders."""


@refunds.command("create")
@click.argument("order_id")
@STORE
@click.option("--amount", default=None, help='an amount, e.g. "10.00"')
@click.option(
    "--item",
    "items",
    multiple=True,
    metavar="ITEM_ID:QUANTITY",
    help="refund units of an item (repeat), e.g. --item 1:2",
)
@click.option("--shipping", is_flag=True, help="refund the shipping (price and tax)")
@click.option("--reason", default=None)
@click.option("--idempotency-key", default=None, help="a repeat with the same key is the same")
@JSON
def create(
    order_id: str,
    store_id: str,
    amount: str | None,
    items: tuple[str, ...],
    shipping: bool,
    reason: str | None,
    idempotency_key: str | None,
    as_json: bool,
) -> None:
    """Refund ORDER_ID: --amount, or --item and/or --shipping. The money is sent by the
    worker; the refund is printed as pending."""
    fields: dict[str, Any] = {"reason": reason}
    if amount is not None:
        fields["amount"] = amount
    if items:
        fields["items"] = [_item(text) for text in items]
    if shipping:
        fields["shipping"] = True
    try:
        request = RefundRequest.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'refund'}: {e['msg']}" for e in error.errors()
        )
        raise click.UsageError(problems) from None

    async def work(container: Container) -> dict[str, Any]:
        async with container.db.transaction() as session:
            outcome = await container.refunds.create(
                session,
                store_id,
                order_id,
                request,
                idempotency_key,
                Actor.system("cli"),
            )
            return render_refund(outcome.refund)

    data = run(work)
    emit(as_json, data, _line(data))


@refunds.command("list")
@click.argument("order_id")
@STORE
@JSON
def list_refunds(order_id: str, store_id: str, as_json: bool) -> None:
    """The order's refunds and cancellation releases, oldest first."""

    async def work(container: Container) -> list[dict[str, Any]]:
        async with container.db.reader() as session:
            order = await container.orders.load(session, store_id, order_id)
            return [render_refund(r) for r in await container.refunds.list(session, order)]

    rows = run(work)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(_line(row))


def _item(text: str) -> dict[str, Any]:
    item_id, _, quantity = text.partition(":")
    if not quantity.isdigit():
        raise click.BadParameter(f"{text!r}: give ITEM_ID:QUANTITY, e.g. 1:2", param_hint="--item")
    return {"item_id": item_id, "quantity": int(quantity)}
