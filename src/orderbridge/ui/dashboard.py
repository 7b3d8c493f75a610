"""The store's dashboard: orders received today and this week by status (days and weeks
in the viewer's time zone, weeks from Monday), the orders that need attention, and, for
owners, the webhook endpoints that are failing or were disabled by failures."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from fastapi import APIRouter, Request
from fastapi.responses import Response

from orderbridge.db.models import WebhookEndpoint
from orderbridge.ids import order_public_id
from orderbridge.orders.lifecycle import OrderStatus
from orderbridge.orders.listing import ATTENTION_LABELS, Attention, ListFilter, list_page
from orderbridge.orders.queries import OrderFilter
from orderbridge.orders.summary import attention_counts, status_counts
from orderbridge.ui.deps import ContainerDep, StoreAccess
from orderbridge.ui.rendering import formats, render
from orderbridge.ui.settings_webhooks import endpoint_health

router = APIRouter()

ATTENTION_SHOWN = 10


def period_starts(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Midnight today and midnight last Monday, in ``zone``."""
    local = now.astimezone(zone)
    day = datetime.combine(local.date(), time.min, local.tzinfo)
    return day, day - timedelta(days=local.weekday())


def _failing(endpoint: WebhookEndpoint) -> bool:
    """Failing now, or disabled by its failures (not by the merchant)."""
    if endpoint.enabled:
        return endpoint.failing_since is not None
    return endpoint.disabled_reason != "manual"


@router.get("/stores/{store_id}/dashboard", name="dashboard")
async def dashboard(request: Request, access: StoreAccess, container: ContainerDep) -> Response:
    fmt = formats(request)
    day_start, week_start = period_starts(container.clock.now(), fmt.zone)
    everything = ListFilter(OrderFilter(store_id=access.store_id), attention=tuple(Attention))
    async with container.db.reader() as session:
        counts = await status_counts(
            session, access.store_id, day_start=day_start, week_start=week_start
        )
        flagged = await attention_counts(session, access.store_id)
        newest = await list_page(session, everything, limit=ATTENTION_SHOWN)
        endpoints = (
            await container.webhooks.list_endpoints(session, access.store_id)
            if access.is_owner
            else []
        )
    return render(
        request,
        "dashboard.html",
        {
            "nav": "dashboard",
            "counts": counts,
            "statuses": [s.value for s in OrderStatus],
            "today": fmt.local_date(day_start),
            "week": fmt.local_date(week_start),
            "week_label": format_date(week_start, "EEEE d MMMM", locale=fmt.locale),
            "flagged": [(item, ATTENTION_LABELS[item.flag]) for item in flagged],
            "attention": newest.rows,
            "more_attention": newest.older is not None,
            "failing": [e for e in endpoints if _failing(e)],
            "health": endpoint_health,
            "public_id": order_public_id,
        },
    )
