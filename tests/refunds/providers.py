"""Payment-provider doubles of the refund tests. The in-memory ``test`` provider answers a
repeated refund key with the first refund, which hides a doubled call: these record every
call."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

from orderbridge.payments.port import PaymentRejected, RefundOutcome, RefundStatus
from orderbridge.payments.test_provider import TestPaymentProvider


@dataclass(frozen=True)
class RefundCall:
    reference: str
    amount: Decimal
    idempotency_key: str


class RecordingProvider(TestPaymentProvider):
    """The ``test`` provider, plus a log of every refund call and a switch that makes it
    refuse refunds for good."""

    __test__ = False

    def __init__(self) -> None:
        super().__init__()
        self.refund_calls: list[RefundCall] = []
        self.refuse_refunds: str | None = None  # the refusal's code when set
        self.pending_answers = 0  # how many refund answers say "pending" (money on its way)

    async def refund(
        self, reference: str, *, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundOutcome:
        self.refund_calls.append(RefundCall(reference, amount, idempotency_key))
        if self.refuse_refunds is not None:
            raise PaymentRejected("the card account is closed", code=self.refuse_refunds)
        outcome = await super().refund(
            reference, amount=amount, currency=currency, idempotency_key=idempotency_key
        )
        if self.pending_answers > 0:
            self.pending_answers -= 1
            return replace(outcome, status=RefundStatus.PENDING)
        return outcome

    async def refunded_at_provider(self, reference: str, currency: str = "EUR") -> Decimal:
        status = await self.status(reference, amount=Decimal(0), currency=currency)
        return status.refunded


class LedgerProvider(RecordingProvider):
    """Refunds kept in a file, so that a worker process and the test see the same refunds
    and the same log of calls: ``calls.jsonl`` gets a line per call, ``refunds.json`` one
    entry per idempotency key (a repeated key answers the first refund, as a real
    provider does). Payments (status, capture) stay in memory: only the test process
    processes orders."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    async def refund(
        self, reference: str, *, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundOutcome:
        return await asyncio.to_thread(self._refund, reference, amount, currency, idempotency_key)

    def _refund(
        self, reference: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> RefundOutcome:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "calls.jsonl").open("a") as calls:
            calls.write(json.dumps([reference, str(amount), idempotency_key]) + "\n")
        book = self.refunds()
        if idempotency_key not in book:
            book[idempotency_key] = [f"re_ledger_{len(book) + 1}", str(amount)]
            (self.directory / "refunds.json").write_text(json.dumps(book))
        refund_id, booked = book[idempotency_key]
        return RefundOutcome(refund_id, RefundStatus.SUCCEEDED, Decimal(booked), currency)

    def calls(self) -> list[RefundCall]:
        path = self.directory / "calls.jsonl"
        if not path.exists():
            return []
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        return [RefundCall(ref, Decimal(amount), key) for ref, amount, key in lines]

    def refunds(self) -> dict[str, list[str]]:
        """Idempotency key → [provider refund id, amount]."""
        path = self.directory / "refunds.json"
        book: dict[str, list[str]] = json.loads(path.read_text()) if path.exists() else {}
        return book
