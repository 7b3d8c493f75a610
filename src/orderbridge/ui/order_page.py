"""What the order page shows, read in one transaction: the order, its refunds and what is
left to refund, the base-currency equivalent, the actions its lifecycle allows now, and one
timeline of everything that happened (status changes with actor and reason, processing
steps with their evidence, webhook deliveries, plug & play push attempts)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.bootstrap import Container
from orderbridge.db.models import Order, PushAttempt, Refund, Store, User, WebhookEndpoint
from orderbridge.money import ZERO, normalize
from orderbridge.orders.lifecycle import (
    CANCEL_REASONS,
    ActorKind,
    CancellationReason,
    OrderStatus,
    can_change,
)
from orderbridge.orders.queries import order_events
from orderbridge.processing.timeline import merge_key, step_entries
from orderbridge.refunds.remaining import Refundable, remaining
from orderbridge.webhooks.service import DeliveryFilter

CANCEL_REASON_LABELS = {
    CancellationReason.MERCHANT_REQUEST: "Merchant request",
    CancellationReason.FRAUD_DETECTED: "Fraud suspected",
}


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # status, event, step, webhook, push
    title: str
    actor: str | None = None
    detail: str | None = None
    evidence: dict[str, Any] | None = None
    tone: str = ""  # ok, fail, wait


@dataclass
class Actions:
    accept: bool = False
    cancel: bool = False
    cancel_reasons: list[tuple[str, str]] = field(default_factory=list)
    refund: bool = False
    retry_push: bool = False


@dataclass
class OrderView:
    order: Order
    store: Store
    refunds: list[Refund]
    refundable: Refundable
    base_total: Decimal | None
    release_amount: Decimal  # what a cancellation gives back (captured, else authorised)
    actions: Actions
    timeline: list[Entry]


def base_equivalent(order: Order, base_currency: str) -> Decimal | None:
    """The order total in the store's currency: base = amount / rate (contract §2)."""
    if order.currency == base_currency:
        return order.total
    rate = order.document.get("exchange_rates", {}).get(base_currency)
    try:
        value = Decimal(str(rate)) if rate is not None else None
    except InvalidOperation:
        return None
    if not value:
        return None
    return normalize(order.total / value, base_currency)


def allowed_actions(order: Order, refundable: Refundable) -> Actions:
    status = OrderStatus(order.status)
    actions = Actions()
    actions.accept = can_change(status, OrderStatus.ACCEPTED, ActorKind.MERCHANT)
    reasons = CANCEL_REASONS.get((status, ActorKind.MERCHANT), frozenset())
    actions.cancel = bool(reasons) and can_change(status, OrderStatus.CANCELLED, ActorKind.MERCHANT)
    actions.cancel_reasons = [
        (reason.value, CANCEL_REASON_LABELS.get(reason, reason.value))
        for reason in CancellationReason
        if reason in reasons
    ]
    actions.refund = status is OrderStatus.COMPLETED and refundable.amount > ZERO
    actions.retry_push = status is OrderStatus.READY and order.push_status == "failed"
    return actions


async def _user_names(session: AsyncSession, ids: Iterable[str | None]) -> dict[str, str]:
    wanted = {i for i in ids if i and i.startswith("usr_")}
    if not wanted:
        return {}
    rows = await session.execute(select(User.id, User.email).where(User.id.in_(wanted)))
    return {user_id: email for user_id, email in rows}


def _actor(kind: str, actor_id: str | None, names: dict[str, str]) -> str:
    if actor_id and actor_id in names:
        return names[actor_id]
    if kind == ActorKind.MERCHANT and actor_id and actor_id.startswith("key_"):
        return f"API key {actor_id}"
    return f"{kind}" + (f" ({actor_id})" if actor_id else "")


async def load_order_view(
    container: Container, session: AsyncSession, store_id: str, public_id: str
) -> OrderView:
    order = await container.orders.load(session, store_id, public_id)
    store = await session.get(Store, store_id)
    assert store is not None
    refunds = await container.refunds.list(session, order)
    refundable = remaining(order, refunds)
    events = await order_events(session, order.id)
    steps = await step_entries(session, order.id)
    deliveries = await container.webhooks.list_deliveries(
        session, DeliveryFilter(store_id=store_id, order_id=order.id, limit=200)
    )
    endpoint_urls = {
        endpoint_id: endpoint_url
        for endpoint_id, endpoint_url in await session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.url).where(
                WebhookEndpoint.store_id == store_id
            )
        )
    }
    pushes = (
        await session.scalars(
            select(PushAttempt)
            .where(PushAttempt.order_id == order.id)
            .order_by(PushAttempt.run, PushAttempt.attempt)
        )
    ).all()
    names = await _user_names(session, (e.actor_id for e in events))
    timed: list[tuple[tuple[datetime, int], Entry]] = []
    for e in events:
        if e.to_status:
            title = f"{e.from_status or 'new'} → {e.to_status}"
            tone = "fail" if e.to_status == OrderStatus.CANCELLED else "ok"
        else:
            title, tone = e.name, "fail" if e.name.endswith("failed") else ""
        detail = " · ".join(
            part
            for part in (
                e.name if e.to_status else None,
                f"reason: {e.reason}" if e.reason else None,
                e.note,
                e.entity_id,
            )
            if part
        )
        key = merge_key(e.occurred_at, is_step=False, first_event=e.name == "order.received")
        timed.append(
            (
                key,
                Entry(
                    e.occurred_at,
                    "status" if e.to_status else "event",
                    title,
                    _actor(e.actor_kind, e.actor_id, names),
                    detail or None,
                    tone=tone,
                ),
            )
        )
    for s in steps:
        tone = {"pass": "ok", "approved": "ok", "fail": "fail", "rejected": "fail"}.get(
            s.outcome, "wait"
        )
        timed.append(
            (
                merge_key(s.at, is_step=True, first_event=False),
                Entry(
                    s.at,
                    "step",
                    f"{s.step.replace('_', ' ')}: {s.outcome}",
                    _actor(s.actor, s.actor_id, names),
                    s.summary,
                    s.evidence or None,
                    tone,
                ),
            )
        )
    for d in deliveries:
        url = endpoint_urls.get(d.endpoint_id, d.endpoint_id)
        code = f", last answer {d.last_status_code}" if d.last_status_code else ""
        timed.append(
            (
                (d.created_at, 3),
                Entry(
                    d.created_at,
                    "webhook",
                    f"webhook {d.event_name}: {d.status}",
                    None,
                    f"to {url}, {d.attempts} attempt(s){code}"
                    + (f": {d.last_error}" if d.last_error else ""),
                    tone={"delivered": "ok", "failed": "fail"}.get(d.status, "wait"),
                ),
            )
        )
    for p in pushes:
        timed.append(
            (
                (p.started_at, 3),
                Entry(
                    p.started_at,
                    "push",
                    f"push to {p.platform} (run {p.run}, try {p.attempt}): {p.outcome}",
                    "plug & play",
                    " · ".join(
                        x
                        for x in (
                            p.code,
                            p.detail,
                            p.platform_order_number and f"platform order {p.platform_order_number}",
                            f"{p.duration_ms} ms",
                        )
                        if x
                    ),
                    {"request": p.request, "response": p.response},
                    tone={"pushed": "ok", "found": "ok"}.get(p.outcome, "fail"),
                ),
            )
        )
    timed.sort(key=lambda pair: pair[0])
    release = order.captured if order.captured > ZERO else order.authorized
    return OrderView(
        order=order,
        store=store,
        refunds=refunds,
        refundable=refundable,
        base_total=base_equivalent(order, store.currency),
        release_amount=release,
        actions=allowed_actions(order, refundable),
        timeline=[entry for _, entry in timed],
    )
