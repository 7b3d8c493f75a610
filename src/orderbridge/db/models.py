"""The tables. ORM classes are the storage entities; the rules over them are pure functions
elsewhere (``orders.lifecycle``), and the wire shapes are in each package's ``schemas``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from orderbridge.db.types import BigIntPK, Money, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), Decimal: Money(), dict[str, Any]: JSON()}


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[str] = mapped_column(String(18), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3))
    country: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("store_id", "idempotency_key"),
        Index(None, "store_id", "id"),
        Index(None, "store_id", "status", "id"),
        Index(None, "store_id", "customer_email"),
        Index(None, "store_id", "external_order_number"),
        Index(None, "store_id", "email_key", "created_at"),
        Index(None, "store_id", "client_ip", "created_at"),
        Index(None, "store_id", "address_key", "created_at"),
        Index(None, "store_id", "card_fingerprint", "created_at"),
        Index(None, "store_id", "push_status"),
        # The Merchant Account's order list (orders.listing): each filter and search has an
        # index that also holds the id, so a page's ids come from the index alone.
        Index(None, "store_id", "shipping_country", "id"),
        Index(None, "store_id", "created_at", "id"),
        Index(None, "store_id", "customer_name", "id"),
        Index(None, "store_id", "external_order_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"))
    status: Mapped[str] = mapped_column(String(16))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    request_hash: Mapped[str] = mapped_column(String(64))
    environment: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal]
    customer_email: Mapped[str] = mapped_column(String(320))
    customer_name: Mapped[str] = mapped_column(String(512))
    shipping_country: Mapped[str] = mapped_column(String(2))
    payment_status: Mapped[str] = mapped_column(String(24))
    authorized: Mapped[Decimal]
    captured: Mapped[Decimal]
    refunded: Mapped[Decimal]
    external_order_id: Mapped[str | None] = mapped_column(String(64))
    external_order_number: Mapped[str | None] = mapped_column(String(64))
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    cancelled_by: Mapped[str | None] = mapped_column(String(16))
    cancel_note: Mapped[str | None] = mapped_column(Text)
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The checkout document as validated (amounts as strings, items with ids).
    document: Mapped[dict[str, Any]]
    # Processing: the store configuration version the order is processed under, and the
    # fraud review it may be waiting for.
    processing_version: Mapped[int | None]
    review_status: Mapped[str | None] = mapped_column(String(16))
    review_deadline: Mapped[datetime | None]
    card_fingerprint: Mapped[str | None] = mapped_column(String(64))
    card_country: Mapped[str | None] = mapped_column(String(2))
    # What fraud velocity rules count by (screening.fraud.velocity_value).
    email_key: Mapped[str | None] = mapped_column(String(320))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    address_key: Mapped[str | None] = mapped_column(String(512))
    # Plug & play: null for stores without a connection; pending | retrying | pushed |
    # failed (flagged for the merchant) | skipped (connectors.push.PushStatus).
    push_status: Mapped[str | None] = mapped_column(String(16))


class Event(Base):
    """An event of the feed, and the audit entry of the change that caused it.

    Feed order is (txid, pos): see events.feed for why this is gap-free."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("txid", "pos"),
        Index(None, "store_id", "txid", "pos"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    txid: Mapped[int] = mapped_column(BigIntPK)
    pos: Mapped[int]
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    name: Mapped[str] = mapped_column(String(48))
    occurred_at: Mapped[datetime]
    entity_id: Mapped[str | None] = mapped_column(String(64))
    external_order_id: Mapped[str | None] = mapped_column(String(64))
    external_order_number: Mapped[str | None] = mapped_column(String(64))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)


class Job(Base):
    """A durable background job (transactional outbox): written in the same transaction as
    the change that causes it, claimed by a worker under a lease."""

    __tablename__ = "jobs"
    __table_args__ = (Index(None, "status", "run_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(48))
    order_id: Mapped[int | None] = mapped_column(BigIntPK, index=True)
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    run_at: Mapped[datetime]
    attempts: Mapped[int]
    max_attempts: Mapped[int]
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookEndpoint(Base):
    """A merchant's URL subscribed to the store's events."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(255))
    # "|order.ready|order.cancelled|", or "" for every event: matched with LIKE in the
    # statement that creates deliveries, the same on both databases.
    event_filter: Mapped[str] = mapped_column(String(1024))
    enabled: Mapped[bool]
    ordered: Mapped[bool]
    max_concurrency: Mapped[int]
    rate_limit: Mapped[float | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(32))
    disabled_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_failure_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WebhookSecret(Base):
    """Signing secrets of an endpoint, encrypted. During a rotation the old one keeps
    signing until ``expires_at``."""

    __tablename__ = "webhook_secrets"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One event to one endpoint: created in the event's transaction, sent at least once."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        Index(None, "endpoint_id", "status", "next_attempt_at"),
        Index(None, "endpoint_id", "id"),
        UniqueConstraint("endpoint_id", "event_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    store_id: Mapped[str] = mapped_column(String(18))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    order_id: Mapped[int | None] = mapped_column(BigIntPK, index=True)
    event_name: Mapped[str] = mapped_column(String(48))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime]
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    """One HTTP request of a delivery, kept for the delivery log until pruned."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    endpoint_id: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int]
    attempted_at: Mapped[datetime] = mapped_column(index=True)
    duration_ms: Mapped[int]
    status_code: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class ProcessingConfig(Base):
    """A store's processing configuration; every change is a new version, and an order
    records the version it was processed under."""

    __tablename__ = "processing_configs"

    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    config: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(64))


class OrderStep(Base):
    """The outcome of one processing step of an order, with its evidence (timeline)."""

    __tablename__ = "order_steps"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    step: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]]
    at: Mapped[datetime]


class Refund(Base):
    """Money going back to the buyer: a merchant's refund of a completed order, or the
    release (void or refund) that every cancellation makes. Sent by a durable job."""

    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("order_id", "idempotency_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    store_id: Mapped[str] = mapped_column(String(18))
    kind: Mapped[str] = mapped_column(String(16))  # refund | cancellation
    operation: Mapped[str | None] = mapped_column(String(16))  # void | refund (at the provider)
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(255))
    items: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    provider_reference: Mapped[str | None] = mapped_column(String(128))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class PaymentConfirmation(Base):
    """A deferred payment (bank transfer) confirmed by the provider's callback or an
    operator."""

    __tablename__ = "payment_confirmations"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    amount: Mapped[Decimal]
    reference: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(64))
    confirmed_at: Mapped[datetime]


class StoreConnection(Base):
    """A store's plug & play connection to its e-commerce platform (one per store).
    Credentials are encrypted with the container's SecretBox and never returned."""

    __tablename__ = "store_connections"

    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    base_url: Mapped[str] = mapped_column(String(2048))
    credentials_encrypted: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]]
    failure_policy: Mapped[str] = mapped_column(String(16))  # notify | cancel
    max_attempts: Mapped[int]
    # Seconds to wait after each failed attempt: {"delays": [60, 300, ...]}.
    retry_schedule: Mapped[dict[str, Any]]
    currency_mode: Mapped[str] = mapped_column(String(8))  # base | buyer
    timeout: Mapped[float]
    enabled: Mapped[bool]
    # Bumped on every change: cached connectors are rebuilt when it moves.
    version: Mapped[int]
    last_test_at: Mapped[datetime | None]
    last_test_ok: Mapped[bool | None]
    last_test_code: Mapped[str | None] = mapped_column(String(32))
    last_test_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PushAttempt(Base):
    """One try at pushing an order into the store's platform, for the per-order push log.
    ``run`` counts pushes (a merchant's "retry push" starts a new one), ``attempt`` the
    tries within a run."""

    __tablename__ = "push_attempts"
    __table_args__ = (UniqueConstraint("order_id", "run", "attempt"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    store_id: Mapped[str] = mapped_column(String(18))
    run: Mapped[int]
    attempt: Mapped[int]
    platform: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))  # create | find
    started_at: Mapped[datetime]
    duration_ms: Mapped[int]
    outcome: Mapped[str] = mapped_column(String(16))  # pushed | found | retryable | rejected...
    code: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    platform_order_id: Mapped[str | None] = mapped_column(String(64))
    platform_order_number: Mapped[str | None] = mapped_column(String(64))
    request: Mapped[dict[str, Any]]
    response: Mapped[dict[str, Any]]


class User(Base):
    """A person who signs in to the Merchant Account. ``email`` is stored lower-cased, so
    it is unique case-insensitively on both databases; ``session_version`` moves when the
    password changes or the user is disabled, which ends every session signed before."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    time_zone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(16))
    session_version: Mapped[int]
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]


class StoreMembership(Base):
    """A user's access to one store: ``owner`` (everything) or ``staff`` (orders only)."""

    __tablename__ = "store_memberships"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]
