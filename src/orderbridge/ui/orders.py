"""The orders pages: the list with filters, search, keyset pages and CSV export, and the
order page. Reads only; the actions are in ``order_actions``."""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from orderbridge.ids import order_public_id
from orderbridge.orders.lifecycle import OrderStatus
from orderbridge.orders.listing import ATTENTION_LABELS, list_page
from orderbridge.ui.csv_export import export_rows
from orderbridge.ui.deps import ContainerDep, StoreAccess, StoreContext
from orderbridge.ui.forms import FormState
from orderbridge.ui.order_filters import ANY_ATTENTION, parse_filters
from orderbridge.ui.order_page import load_order_view
from orderbridge.ui.rendering import formats, render, url

router = APIRouter()

PAGE_SIZE = 50
OrderIdPath = Annotated[str, Path(max_length=40)]

ATTENTION_OPTIONS = [("", "All orders"), (ANY_ATTENTION, "Needs attention (any)")] + [
    (flag.value, label) for flag, label in ATTENTION_LABELS.items()
]


@router.get("/stores/{store_id}/orders", name="orders")
async def order_list(request: Request, access: StoreAccess, container: ContainerDep) -> Response:
    fmt = formats(request)
    parsed = parse_filters(request.query_params, access.store_id, fmt.zone)
    rows: list[Any] = []
    newer = older = None
    if parsed.form.ok:
        async with container.db.reader() as session:
            page = await list_page(
                session,
                parsed.filter,
                after=parsed.after,
                before=parsed.before,
                limit=PAGE_SIZE,
            )
        rows = list(page.rows)
        base = url(request, "orders", store_id=access.store_id)
        query = parsed.query()
        if page.newer is not None:
            newer = (
                base
                + "?"
                + urlencode(query + [("before", order_public_id(access.store_id, page.newer))])
            )
        if page.older is not None:
            older = (
                base
                + "?"
                + urlencode(query + [("after", order_public_id(access.store_id, page.older))])
            )
    export = url(request, "orders_csv", store_id=access.store_id) + (
        "?" + urlencode(parsed.query()) if parsed.query() else ""
    )
    return render(
        request,
        "orders/list.html",
        {
            "rows": rows,
            "form": parsed.form,
            "statuses": [s.value for s in OrderStatus],
            "chosen_statuses": parsed.statuses,
            "attention_options": ATTENTION_OPTIONS,
            "newer": newer,
            "older": older,
            "export": export,
            "filtered": any(parsed.form.values.values()) or bool(parsed.statuses),
            "public_id": order_public_id,
        },
        status_code=200 if parsed.form.ok else 422,
    )


@router.get("/stores/{store_id}/orders.csv", name="orders_csv")
async def order_export(request: Request, access: StoreAccess, container: ContainerDep) -> Response:
    parsed = parse_filters(request.query_params, access.store_id, formats(request).zone)
    if not parsed.form.ok:
        problems = "; ".join(f"{k}: {v}" for k, v in parsed.form.errors.items())
        # Plain text: the messages quote what was typed.
        return PlainTextResponse(f"invalid filter: {problems}", status_code=422)
    name = f"orders-{access.store_id}-{container.clock.now():%Y%m%d-%H%M%S}.csv"
    return StreamingResponse(
        export_rows(container, parsed.filter),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def render_order_page(
    request: Request,
    access: StoreContext,
    container: ContainerDep,
    order_id: str,
    *,
    forms: dict[str, FormState] | None = None,
    status_code: int = 200,
) -> Response:
    """The order page; an action that failed passes its form back (values and errors)."""
    async with container.db.reader() as session:
        view = await load_order_view(container, session, access.store_id, order_id)
    forms = forms or {}
    defaults = {
        "accept": FormState(),
        "cancel": FormState({"reason": "merchant_request"}),
        "refund": FormState({"mode": "amount"}),
    }
    return render(
        request,
        "orders/detail.html",
        {
            "view": view,
            "o": view.order,
            "doc": view.order.document,
            "order_id": order_public_id(view.order.store_id, view.order.id),
            "forms": {**defaults, **forms},
            "refund_key": "ui-" + secrets.token_urlsafe(16),
            "nav": "orders",
        },
        status_code=status_code,
    )


@router.get("/stores/{store_id}/orders/{order_id}", name="order")
async def order_page(
    request: Request, order_id: OrderIdPath, access: StoreAccess, container: ContainerDep
) -> Response:
    return await render_order_page(request, access, container, order_id)
