"""Webhook use cases: manage endpoints and their secrets, read the delivery log, resend and
recover. Each runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.clock import Clock
from orderbridge.crypto import SecretBox
from orderbridge.db.database import wake_after_commit
from orderbridge.db.models import (
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSecret,
)
from orderbridge.errors import FieldError, NotFound, ValidationFailed
from orderbridge.events.recorder import EventRecorder, NewEvent
from orderbridge.ids import random_token
from orderbridge.orders.lifecycle import Actor
from orderbridge.outbound.guard import OutboundPolicy, UnsafeTarget, check_url
from orderbridge.outbound.signing import generate_secret
from orderbridge.webhooks.repository import (
    DELIVERIES,
    NEW_DELIVERY_COLUMNS,
    DeliveryStatus,
    filter_text,
)
from orderbridge.webhooks.schemas import EndpointCreate, EndpointUpdate


@dataclass(frozen=True)
class StoredSecret:
    secret: str
    created_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class DeliveryFilter:
    store_id: str
    endpoint_id: str | None = None
    order_id: int | None = None
    statuses: tuple[str, ...] = ()
    before_id: int | None = None  # cursor: newest first
    limit: int = 50


class WebhookService:
    def __init__(
        self,
        clock: Clock,
        box: SecretBox,
        policy: OutboundPolicy,
        recorder: EventRecorder,
        *,
        secret_overlap: timedelta = timedelta(hours=24),
    ) -> None:
        self.clock = clock
        self.box = box
        self.policy = policy
        self.recorder = recorder
        self.secret_overlap = secret_overlap

    # ---- endpoints ------------------------------------------------------------------------

    def _check_url(self, url: str, field: str = "url") -> None:
        try:
            check_url(url, self.policy)
        except UnsafeTarget as refusal:
            raise ValidationFailed([FieldError(field, str(refusal), str(refusal.code))]) from None

    async def create_endpoint(
        self, session: AsyncSession, store_id: str, spec: EndpointCreate
    ) -> tuple[WebhookEndpoint, str]:
        self._check_url(spec.url)
        now = self.clock.now()
        endpoint = WebhookEndpoint(
            id="we_" + random_token(12),
            store_id=store_id,
            url=spec.url,
            description=spec.description,
            event_filter=filter_text(spec.events),
            enabled=spec.enabled,
            ordered=spec.ordered,
            max_concurrency=spec.max_concurrency,
            rate_limit=spec.rate_limit,
            disabled_reason=None if spec.enabled else "manual",
            disabled_at=None if spec.enabled else now,
            created_at=now,
            updated_at=now,
        )
        session.add(endpoint)
        secret = self._add_secret(session, endpoint.id, now)
        await session.flush()
        return endpoint, secret

    async def get_endpoint(
        self, session: AsyncSession, store_id: str, endpoint_id: str, *, for_update: bool = False
    ) -> WebhookEndpoint:
        query = select(WebhookEndpoint).where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.store_id == store_id
        )
        if for_update:
            query = query.with_for_update()
        endpoint = await session.scalar(query)
        if endpoint is None:
            raise NotFound(f"no webhook endpoint {endpoint_id}", code="endpoint_not_found")
        return endpoint

    async def list_endpoints(
        self, session: AsyncSession, store_id: str
    ) -> Sequence[WebhookEndpoint]:
        query = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.store_id == store_id)
            .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
        )
        return (await session.scalars(query)).all()

    async def update_endpoint(
        self, session: AsyncSession, store_id: str, endpoint_id: str, change: EndpointUpdate
    ) -> WebhookEndpoint:
        endpoint = await self.get_endpoint(session, store_id, endpoint_id, for_update=True)
        now = self.clock.now()
        fields = change.model_dump(exclude_unset=True)
        if "url" in fields and fields["url"] is not None:
            self._check_url(fields["url"])
            endpoint.url = fields["url"]
        if fields.get("events") is not None:
            endpoint.event_filter = filter_text(fields["events"])
        for name in ("description", "ordered", "max_concurrency", "rate_limit"):
            if name in fields and (
                fields[name] is not None or name in ("description", "rate_limit")
            ):
                setattr(endpoint, name, fields[name])
        if fields.get("enabled") is True and not endpoint.enabled:
            # Re-enabled: what is still pending goes out again; missed events are recovered
            # on request (recover_since), since the merchant decides how far back.
            endpoint.enabled = True
            endpoint.disabled_reason = endpoint.disabled_at = endpoint.failing_since = None
            wake_after_commit(session, "webhooks")
        elif fields.get("enabled") is False and endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_reason, endpoint.disabled_at = "manual", now
        endpoint.updated_at = now
        await session.flush()
        return endpoint

    async def delete_endpoint(self, session: AsyncSession, store_id: str, endpoint_id: str) -> None:
        endpoint = await self.get_endpoint(session, store_id, endpoint_id, for_update=True)
        await session.delete(endpoint)
        await session.flush()

    async def disable(
        self, session: AsyncSession, endpoint: WebhookEndpoint, reason: str, now: datetime
    ) -> None:
        """Stop sending to an endpoint and tell the merchant with ``endpoint.disabled``."""
        if not endpoint.enabled:
            return
        endpoint.enabled = False
        endpoint.disabled_reason, endpoint.disabled_at, endpoint.updated_at = reason, now, now
        await session.flush()
        await self.recorder.record(
            session,
            NewEvent(
                store_id=endpoint.store_id,
                name="endpoint.disabled",
                at=now,
                actor=Actor.system("webhooks"),
                entity_id=endpoint.id,
                reason=reason,
            ),
        )

    # ---- secrets --------------------------------------------------------------------------

    async def live_secrets(self, session: AsyncSession, endpoint_id: str) -> list[StoredSecret]:
        now = self.clock.now()
        rows = await session.scalars(
            select(WebhookSecret)
            .where(WebhookSecret.endpoint_id == endpoint_id)
            .order_by(WebhookSecret.created_at.desc(), WebhookSecret.id.desc())
        )
        return [
            StoredSecret(self.box.decrypt(row.secret_encrypted), row.created_at, row.expires_at)
            for row in rows.all()
            if row.expires_at is None or row.expires_at > now
        ]

    async def rotate_secret(
        self,
        session: AsyncSession,
        store_id: str,
        endpoint_id: str,
        overlap: timedelta | None = None,
    ) -> str:
        """A new secret signs from now on; the current ones keep signing for ``overlap``
        (default 24 h), so receivers can switch without losing a delivery."""
        await self.get_endpoint(session, store_id, endpoint_id, for_update=True)
        now = self.clock.now()
        until = now + (self.secret_overlap if overlap is None else overlap)
        await session.execute(
            update(WebhookSecret)
            .where(
                WebhookSecret.endpoint_id == endpoint_id,
                (WebhookSecret.expires_at.is_(None)) | (WebhookSecret.expires_at > until),
            )
            .values(expires_at=until)
        )
        secret = self._add_secret(session, endpoint_id, now)
        await session.flush()
        return secret

    def _add_secret(self, session: AsyncSession, endpoint_id: str, now: datetime) -> str:
        secret = generate_secret()
        session.add(
            WebhookSecret(
                endpoint_id=endpoint_id,
                secret_encrypted=self.box.encrypt(secret),
                created_at=now,
                expires_at=None,
            )
        )
        return secret

    # ---- deliveries -----------------------------------------------------------------------

    async def list_deliveries(
        self, session: AsyncSession, f: DeliveryFilter
    ) -> Sequence[WebhookDelivery]:
        d = WebhookDelivery
        query = select(d).where(d.store_id == f.store_id)
        if f.endpoint_id:
            query = query.where(d.endpoint_id == f.endpoint_id)
        if f.order_id is not None:
            query = query.where(d.order_id == f.order_id)
        if f.statuses:
            query = query.where(d.status.in_(f.statuses))
        if f.before_id is not None:
            query = query.where(d.id < f.before_id)
        return (await session.scalars(query.order_by(d.id.desc()).limit(f.limit))).all()

    async def get_delivery(
        self, session: AsyncSession, store_id: str, delivery_id: int
    ) -> tuple[WebhookDelivery, Event, Sequence[WebhookAttempt]]:
        delivery = await session.scalar(
            select(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id, WebhookDelivery.store_id == store_id
            )
        )
        if delivery is None:
            raise NotFound(f"no delivery {delivery_id}", code="delivery_not_found")
        event = await session.get(Event, delivery.event_id)
        assert event is not None
        attempts = (
            await session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery_id)
                .order_by(WebhookAttempt.attempt, WebhookAttempt.id)
            )
        ).all()
        return delivery, event, attempts

    async def resend(
        self, session: AsyncSession, store_id: str, delivery_id: int
    ) -> WebhookDelivery:
        """Send a delivery again now, whatever its state (a delivery in flight is left)."""
        delivery, _, _ = await self.get_delivery(session, store_id, delivery_id)
        if delivery.status != DeliveryStatus.SENDING:
            now = self.clock.now()
            delivery.status, delivery.next_attempt_at = DeliveryStatus.PENDING, now
            delivery.completed_at, delivery.updated_at = None, now
            await session.flush()
            wake_after_commit(session, "webhooks")
        return delivery

    async def recover_since(
        self, session: AsyncSession, store_id: str, endpoint_id: str, since: datetime
    ) -> tuple[int, int]:
        """Requeue the endpoint's failed deliveries since ``since``, and create deliveries
        for the matching events it never got (while it was disabled). Returns
        (requeued, created)."""
        endpoint = await self.get_endpoint(session, store_id, endpoint_id, for_update=True)
        now = self.clock.now()
        d = WebhookDelivery
        requeued = await session.execute(
            update(d)
            .where(
                d.endpoint_id == endpoint_id,
                d.status == DeliveryStatus.FAILED,
                d.created_at >= since,
            )
            .values(
                status=DeliveryStatus.PENDING,
                next_attempt_at=now,
                completed_at=None,
                updated_at=now,
            )
        )
        missing = select(
            literal(endpoint.id),
            Event.store_id,
            Event.id,
            Event.order_id,
            Event.name,
            literal(DeliveryStatus.PENDING),
            literal(0),
            literal(now, type_=DELIVERIES.c.next_attempt_at.type),
            literal(now, type_=DELIVERIES.c.created_at.type),
            literal(now, type_=DELIVERIES.c.updated_at.type),
        ).where(
            Event.store_id == store_id,
            # Missed means since the endpoint exists: recovering is no history backfill
            # (the event feed is), or a new endpoint would get every event of the range.
            Event.occurred_at >= max(since, endpoint.created_at),
            ~exists().where(and_(d.endpoint_id == endpoint.id, d.event_id == Event.id)),
        )
        if endpoint.event_filter:
            names = [n for n in endpoint.event_filter.split("|") if n]
            missing = missing.where(Event.name.in_(names))
        # An INSERT's row count is only kept when asked for (psycopg reports -1 otherwise).
        created = await session.execute(
            insert(DELIVERIES)
            .from_select(NEW_DELIVERY_COLUMNS, missing)
            .execution_options(preserve_rowcount=True)
        )
        wake_after_commit(session, "webhooks")
        return int(requeued.rowcount or 0), int(created.rowcount or 0)  # type: ignore[attr-defined]
