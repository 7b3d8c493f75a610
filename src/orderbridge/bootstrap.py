"""The composition root: the one place that builds the object graph from settings."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from orderbridge.clock import Clock, SystemClock
from orderbridge.connectors.connections import ConnectionService
from orderbridge.connectors.pool import ConnectorPool
from orderbridge.connectors.push import PushService, push_job_handlers
from orderbridge.connectors.registry import default_registry
from orderbridge.crypto import SecretBox, local_key
from orderbridge.db.database import Database
from orderbridge.events.recorder import EventRecorder
from orderbridge.jobs.worker import JobHandler, Worker, WorkerOptions
from orderbridge.orders.jobs import order_job_handlers
from orderbridge.orders.service import OrderService
from orderbridge.outbound.guard import OutboundPolicy
from orderbridge.payments.registry import (
    PaymentProviders,
    PaymentsConfig,
    build_payment_providers,
)
from orderbridge.payments.stripe_provider import StripeConfig
from orderbridge.processing.pipeline import Pipeline
from orderbridge.refunds.release import PaymentRelease
from orderbridge.refunds.service import RefundService, refund_job_handlers
from orderbridge.settings import Settings
from orderbridge.webhooks import repository as webhook_repository
from orderbridge.webhooks.policy import RetryPolicy
from orderbridge.webhooks.service import WebhookService

if TYPE_CHECKING:
    from orderbridge.webhooks.dispatcher import DispatcherOptions, WebhookDispatcher

log = logging.getLogger("orderbridge")


@dataclass
class Container:
    settings: Settings
    clock: Clock
    db: Database
    box: SecretBox
    outbound: OutboundPolicy
    recorder: EventRecorder
    orders: OrderService
    webhooks: WebhookService
    payments: PaymentProviders
    pipeline: Pipeline
    refunds: RefundService
    connections: ConnectionService
    connectors: ConnectorPool
    pushes: PushService
    handlers: dict[str, JobHandler] = field(default_factory=dict)

    def worker(self, options: WorkerOptions | None = None) -> Worker:
        s = self.settings
        return Worker(
            self.db,
            self.clock,
            self.handlers,
            options
            or WorkerOptions(
                concurrency=s.worker_concurrency,
                batch_size=s.worker_batch_size,
                poll_interval=s.worker_poll_interval,
                lease=timedelta(seconds=s.job_lease_seconds),
            ),
        )

    def dispatcher(self, options: DispatcherOptions | None = None) -> WebhookDispatcher:
        # Imported here: aiohttp is only needed by the processes that send.
        from orderbridge.webhooks.dispatcher import DispatcherOptions, WebhookDispatcher

        s = self.settings
        return WebhookDispatcher(
            self.db,
            self.clock,
            self.box,
            self.outbound,
            self.webhooks,
            options
            or DispatcherOptions(
                batch_size=s.webhook_batch_size,
                max_in_flight=s.webhook_max_in_flight,
                connect_timeout=s.webhook_connect_timeout,
                total_timeout=s.webhook_total_timeout,
                response_limit=s.webhook_response_limit,
                poll_interval=s.worker_poll_interval,
                retry=self.retry_policy(),
                attempt_retention=timedelta(days=s.webhook_attempt_retention_days),
            ),
        )

    def retry_policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(
            schedule=s.retry_schedule(),
            disable_after=timedelta(hours=s.webhook_disable_after_hours),
        )

    async def close(self) -> None:
        await self.connectors.aclose()
        await self.payments.aclose()
        await self.db.dispose()


def _secret_box(settings: Settings) -> SecretBox:
    keys = settings.secret_key_list()
    if not keys:
        if settings.database_url and not settings.database_url.startswith("sqlite"):
            log.warning(
                "ORDERBRIDGE_SECRET_KEYS is not set: using a key kept in %s; every process "
                "that shares this database needs the same key",
                settings.data_dir,
            )
        keys = [local_key(settings.data_dir)]
    return SecretBox(keys)


def payments_config(settings: Settings) -> PaymentsConfig:
    names = tuple(n.strip() for n in settings.payment_providers.split(",") if n.strip())
    stripe = None
    if settings.stripe_api_key:
        stripe = StripeConfig(
            api_key=settings.stripe_api_key,
            api_base=settings.stripe_api_base or None,
            timeout_seconds=settings.stripe_timeout_seconds,
        )
    return PaymentsConfig(
        enabled=names,
        stripe=stripe,
        test_provider_for_live_orders=settings.test_provider_for_live_orders,
    )


def build(
    settings: Settings, *, clock: Clock | None = None, payments: PaymentProviders | None = None
) -> Container:
    clock = clock or SystemClock()
    db = Database(settings.resolved_database_url(), pool_size=settings.db_pool_size)
    box = _secret_box(settings)
    outbound = OutboundPolicy(allow_private=settings.outbound_allow_private)
    # Deliveries are created in the event's own transaction: no event without them.
    recorder = EventRecorder([webhook_repository.create_deliveries])
    orders = OrderService(clock, recorder)
    webhooks = WebhookService(
        clock,
        box,
        outbound,
        recorder,
        secret_overlap=timedelta(hours=settings.webhook_secret_overlap_hours),
    )
    payments = payments or build_payment_providers(payments_config(settings))
    pipeline = Pipeline(clock, orders, payments)
    release = PaymentRelease(clock, recorder, payments)
    refunds = RefundService(clock, recorder, payments, orders)
    connectors = ConnectorPool(default_registry(), outbound)
    connections = ConnectionService(clock, box, outbound, default_registry(), connectors)
    pushes = PushService(db, clock, recorder, orders, connections, connectors)
    orders.hooks.append(pushes.on_status)
    container = Container(
        settings,
        clock,
        db,
        box,
        outbound,
        recorder,
        orders,
        webhooks,
        payments,
        pipeline,
        refunds,
        connections,
        connectors,
        pushes,
    )
    container.handlers.update(order_job_handlers(orders, pipeline, release))
    container.handlers.update(refund_job_handlers(refunds))
    container.handlers.update(push_job_handlers(pushes))
    return container
