"""A worker that stops dead right after it moved money, so that a crash test can SIGKILL it
between the payment provider's answer and the commit of what the job made of it.

    python -m tests.support.stalling_pipeline DATABASE_URL SIGNAL_FILE POINT NOW PROVIDER [URL]

An ordinary worker of the container (the real handlers, a 1 s lease, one job at a time) on
a clock frozen at NOW (ISO 8601), whose payment provider (``test``, or ``stripe`` at URL) is
wrapped: at POINT it creates SIGNAL_FILE and sleeps.

``after-capture``
    inside ``Pipeline.run``: the provider captured the payment; the steps recorded so far
    and the order's new status are not committed;
``after-release``
    inside the ``payment.release`` job: the provider voided or refunded; the release row
    and the order's payment columns are not committed.

The ``test`` provider keeps its payments in the process's memory, so what it did dies with
the process; only our own rows can be checked then. Stripe (localstripe) keeps its record.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from orderbridge.bootstrap import build
from orderbridge.clock import FrozenClock
from orderbridge.jobs.worker import Worker, WorkerOptions
from orderbridge.payments.port import PaymentProvider, PaymentStatus, RefundOutcome
from orderbridge.payments.registry import (
    PaymentProviders,
    PaymentsConfig,
    build_payment_providers,
)
from orderbridge.payments.stripe_provider import StripeConfig
from orderbridge.settings import Settings, WorkerMode
from tests.support.localstripe import API_KEY
from tests.support.stalling_worker import LEASE, STALL_SECONDS, Stall

POINTS = ("after-capture", "after-release")


class StallingProvider:
    """The wrapped provider, stalling after the calls of ``point``."""

    def __init__(self, inner: PaymentProvider, point: str, stall: Stall) -> None:
        if point not in POINTS:
            raise ValueError(f"unknown stall point {point!r}; one of {POINTS}")
        self.inner = inner
        self.name = inner.name
        self.point = point
        self.stall = stall

    async def status(self, reference: str, *, amount: Decimal, currency: str) -> PaymentStatus:
        return await self.inner.status(reference, amount=amount, currency=currency)

    async def capture(
        self, reference: str, *, amount: Decimal, currency: str, idempotency_key: str
    ) -> PaymentStatus:
        status = await self.inner.capture(
            reference, amount=amount, currency=currency, idempotency_key=idempotency_key
        )
        if self.point == "after-capture":
            await self.stall()
        return status

    async def void(self, reference: str, *, currency: str, idempotency_key: str) -> PaymentStatus:
        status = await self.inner.void(
            reference, currency=currency, idempotency_key=idempotency_key
        )
        if self.point == "after-release":
            await self.stall()
        return status

    async def refund(
        self, reference: str, *, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundOutcome:
        outcome = await self.inner.refund(
            reference, amount=amount, currency=currency, idempotency_key=idempotency_key
        )
        if self.point == "after-release":
            await self.stall()
        return outcome

    async def aclose(self) -> None:
        await self.inner.aclose()


def stalling_providers(
    provider: str, url: str | None, point: str, stall: Stall
) -> PaymentProviders:
    if provider == "stripe":
        assert url, "the stripe provider needs localstripe's URL"
        config = PaymentsConfig(
            enabled=("stripe",),
            stripe=StripeConfig(api_key=API_KEY, api_base=url, max_network_retries=0),
        )
    else:
        config = PaymentsConfig(enabled=("test",))
    inner = build_payment_providers(config).get(provider, environment="test")
    return PaymentProviders(
        {provider: StallingProvider(inner, point, stall)}, live=frozenset({"stripe"})
    )


async def _main(
    url: str, signal_file: str, point: str, now: str, provider: str, stripe_url: str = ""
) -> None:
    clock = FrozenClock(datetime.fromisoformat(now))

    async def stall() -> None:
        await asyncio.to_thread(Path(signal_file).touch)
        await asyncio.sleep(STALL_SECONDS)

    payments = stalling_providers(provider, stripe_url or None, point, stall)
    container = build(
        Settings(database_url=url, worker_mode=WorkerMode.OFF), clock=clock, payments=payments
    )
    try:
        worker = Worker(
            container.db,
            clock,
            container.handlers,
            WorkerOptions(concurrency=1, batch_size=1, lease=LEASE),
        )
        await worker.run_until_idle()
    finally:
        await container.close()
    raise SystemExit("the worker was not killed while stalled")


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:]))
