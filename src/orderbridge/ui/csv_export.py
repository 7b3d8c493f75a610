"""The CSV export of an order list: exactly the rows of the current filter, streamed in
batches (a keyset walk, each batch its own short read), with cells that a spreadsheet would
run as a formula neutralised (OWASP "CSV injection": a leading = + - @, tab or CR)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

from orderbridge.bootstrap import Container
from orderbridge.clock import rfc3339
from orderbridge.ids import order_public_id
from orderbridge.money import format_amount
from orderbridge.orders.listing import ListFilter, export_batch

HEADER = (
    "order_id",
    "created_at",
    "status",
    "customer_name",
    "customer_email",
    "shipping_country",
    "currency",
    "total",
    "payment_status",
    "captured",
    "refunded",
    "external_order_id",
    "external_order_number",
    "cancel_reason",
    "review_status",
    "push_status",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


async def export_rows(
    container: Container, list_filter: ListFilter, *, batch: int = 1000
) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    yield buffer.getvalue()
    after: int | None = None
    while True:
        async with container.db.reader() as session:
            rows = await export_batch(session, list_filter, after=after, size=batch)
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for r in rows:
            writer.writerow(
                [
                    safe_cell(v)
                    for v in (
                        order_public_id(r.store_id, r.id),
                        rfc3339(r.created_at),
                        r.status,
                        r.customer_name,
                        r.customer_email,
                        r.shipping_country,
                        r.currency,
                        format_amount(r.total, r.currency),
                        r.payment_status,
                        format_amount(r.captured, r.currency),
                        format_amount(r.refunded, r.currency),
                        r.external_order_id,
                        r.external_order_number,
                        r.cancel_reason,
                        r.review_status,
                        r.push_status,
                    )
                ]
            )
        yield buffer.getvalue()
        after = rows[-1].id
        if len(rows) < batch:
            return
