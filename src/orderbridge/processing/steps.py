"""The processing steps. Each reads what it needs, may ask a payment provider (idempotent
calls only), and returns a StepResult; none writes a status itself (the pipeline does)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.db.models import Order, PaymentConfirmation
from orderbridge.money import format_amount
from orderbridge.orders.lifecycle import CancellationReason
from orderbridge.payments.port import PaymentRejected, PaymentState, PaymentStatus
from orderbridge.payments.registry import PaymentProviders
from orderbridge.processing.config import ProcessingConfig
from orderbridge.processing.outcome import Outcome, StepResult
from orderbridge.processing.velocity import count_velocity
from orderbridge.screening.facts import OrderFacts, facts_from_document
from orderbridge.screening.fraud import FraudDecision, VelocityCounts, assess, counts_needed
from orderbridge.screening.prohibited import cancellation_note, find_prohibited

PAYMENT_FAILED = CancellationReason.PAYMENT_FAILED


@dataclass
class StepContext:
    session: AsyncSession
    order: Order
    store_country: str
    config: ProcessingConfig
    now: datetime
    providers: PaymentProviders
    # Counted ahead for the fraud step by a batch (Pipeline.run_many), with the facts
    # they were counted for; None: the step counts itself.
    screened: tuple[OrderFacts, VelocityCounts] | None = None
    _facts: tuple[tuple[str | None, str | None], OrderFacts] | None = field(
        default=None, repr=False
    )

    @property
    def payment(self) -> dict[str, Any]:
        payment: dict[str, Any] = self.order.document["payment"]
        return payment

    def facts(self) -> OrderFacts:
        """The order's screening facts, kept while the card facts (which the payment step
        may learn) stay the same: prohibited goods and fraud both need them."""
        card = (self.order.card_fingerprint, self.order.card_country)
        if self._facts is None or self._facts[0] != card:
            self._facts = (card, self._read_facts())
        return self._facts[1]

    def _read_facts(self) -> OrderFacts:
        return facts_from_document(
            self.order.document,
            currency=self.order.currency,
            total=self.order.total,
            store_country=self.store_country,
            card_fingerprint=self.order.card_fingerprint,
            card_country=self.order.card_country,
        )


def _money(amount: Decimal, order: Order) -> str:
    # In the currency's precision: PostgreSQL hands NUMERIC back with its column's scale.
    return f"{format_amount(amount, order.currency)} {order.currency}"


def _status_evidence(status: PaymentStatus) -> dict[str, Any]:
    return {
        "provider_status": status.provider_status,
        "state": status.state.value,
        "authorized": format_amount(status.authorized, status.currency),
        "captured": format_amount(status.captured, status.currency),
        **({"decline_code": status.decline_code} if status.decline_code else {}),
        **dict(status.evidence),
    }


async def payment(ctx: StepContext) -> StepResult:
    order, config = ctx.order, ctx.config.payment
    if ctx.payment["method"] in config.deferred_methods:
        return await _deferred_payment(ctx)
    deadline = order.created_at + timedelta(minutes=config.action_deadline_minutes)
    try:
        provider = ctx.providers.get(ctx.payment["provider"], environment=order.environment)
        status = await provider.status(
            ctx.payment["reference"], amount=order.total, currency=order.currency
        )
    except PaymentRejected as rejected:
        return StepResult.failed(
            PAYMENT_FAILED, f"the payment provider refused: {rejected}", code=rejected.code
        )
    evidence = _status_evidence(status)
    order.card_fingerprint = status.card_fingerprint or order.card_fingerprint
    order.card_country = status.card_country or order.card_country
    if status.state in (PaymentState.AUTHORIZED, PaymentState.CAPTURED):
        held = max(status.authorized, status.captured)
        if held < order.total:
            return StepResult.failed(
                PAYMENT_FAILED,
                f"{_money(held, order)} held for an order of {_money(order.total, order)}",
                **evidence,
            )
        order.authorized = held
        order.captured = status.captured
        order.payment_status = status.state.value
        return StepResult.passed(
            f"payment {status.state.value} ({status.provider_status})", **evidence
        )
    if status.state is PaymentState.PENDING:
        if ctx.now >= deadline:
            return StepResult.failed(
                PAYMENT_FAILED,
                f"payment still {status.pending_reason or 'pending'} at the deadline",
                **evidence,
            )
        until = min(deadline, ctx.now + timedelta(seconds=config.recheck_seconds))
        return StepResult.waiting(
            until,
            f"waiting for the buyer or the bank "
            f"({status.pending_reason or status.provider_status})",
            deadline=deadline.isoformat(),
            **evidence,
        )
    return StepResult.failed(
        PAYMENT_FAILED,
        f"payment {status.state.value}: {status.decline_code or status.provider_status}",
        **evidence,
    )


async def _deferred_payment(ctx: StepContext) -> StepResult:
    order = ctx.order
    deadline = order.created_at + timedelta(hours=ctx.config.payment.deferred_deadline_hours)
    confirmation = await ctx.session.get(PaymentConfirmation, order.id)
    if confirmation is not None:
        if confirmation.amount < order.total:
            return StepResult.failed(
                PAYMENT_FAILED,
                f"{_money(confirmation.amount, order)} received for an order of "
                f"{_money(order.total, order)}",
                source=confirmation.source,
            )
        order.authorized = order.captured = confirmation.amount
        order.payment_status = PaymentState.CAPTURED.value
        return StepResult.passed(
            f"{_money(confirmation.amount, order)} received",
            source=confirmation.source,
            reference=confirmation.reference or "",
        )
    if ctx.now >= deadline:
        return StepResult.failed(
            PAYMENT_FAILED, "no payment received by the deadline", deadline=deadline.isoformat()
        )
    return StepResult.waiting(
        deadline,
        f"waiting for the {ctx.payment['method']} to arrive",
        deadline=deadline.isoformat(),
    )


async def prohibited_goods(ctx: StepContext) -> StepResult:
    facts = ctx.facts()
    rules = ctx.config.prohibited.rules.rules()
    violations = find_prohibited(facts.items, ctx.store_country, facts.shipping_country, rules)
    if violations:
        return StepResult.failed(
            CancellationReason.PROHIBITED_GOODS,
            cancellation_note(violations, facts.shipping_country),
            items=[
                {"item_id": v.item_id, "sku": v.sku, "rule": v.rule_id, "matched": v.matched}
                for v in violations
            ],
        )
    return StepResult.passed(
        f"nothing prohibited for {facts.shipping_country} "
        f"({len(facts.items)} items, {len(rules)} rules)"
    )


async def fraud(ctx: StepContext) -> StepResult:
    order, config = ctx.order, ctx.config.fraud
    if order.review_status is not None:
        return _review_outcome(ctx)
    if ctx.screened is not None:
        facts, counts = ctx.screened
    else:
        facts = ctx.facts()
        counts = await count_velocity(ctx.session, order, facts, counts_needed(config.rules))
    assessment = assess(facts, counts, config.rules)
    evidence = {
        "score": assessment.score,
        "hits": [
            {
                "rule": h.rule_id,
                "points": h.points,
                "why": h.explanation,
                "evidence": {k: str(v) for k, v in h.evidence.items()},
            }
            for h in assessment.hits
        ],
        "skipped": [{"rule": s.rule_id, "why": s.reason} for s in assessment.skipped],
    }
    match assessment.decision:
        case FraudDecision.ACCEPT:
            return StepResult.passed(assessment.explain(), **evidence)
        case FraudDecision.REJECT:
            return StepResult.failed(
                CancellationReason.FRAUD_DETECTED, assessment.explain(), **evidence
            )
    order.review_status = "pending"
    order.review_deadline = ctx.now + timedelta(hours=config.review_deadline_hours)
    return StepResult(Outcome.REVIEW, assessment.explain(), evidence, until=order.review_deadline)


def _review_outcome(ctx: StepContext) -> StepResult:
    order, policy = ctx.order, ctx.config.fraud.on_review_deadline
    if order.review_status == "approved":
        return StepResult.passed("approved in review")
    if order.review_status == "rejected":
        return StepResult.failed(CancellationReason.FRAUD_DETECTED, "rejected in review")
    assert order.review_deadline is not None
    if ctx.now < order.review_deadline:
        return StepResult(Outcome.REVIEW, "waiting for a review", until=order.review_deadline)
    order.review_status = "approved" if policy == "approve" else "rejected"
    if policy == "approve":
        return StepResult.passed("not reviewed in time: approved by the store's policy")
    return StepResult.failed(
        CancellationReason.FRAUD_DETECTED, "not reviewed in time: rejected by the store's policy"
    )


async def capture(ctx: StepContext) -> StepResult:
    order = ctx.order
    if order.captured >= order.total:
        return StepResult.passed(f"{_money(order.captured, order)} already captured")
    provider = ctx.providers.get(ctx.payment["provider"], environment=order.environment)
    try:
        # Keyed by the order: a retry after a crash repeats this capture, never a second one.
        status = await provider.capture(
            ctx.payment["reference"],
            amount=order.total,
            currency=order.currency,
            idempotency_key=f"capture-{order.id}",
        )
    except PaymentRejected as rejected:
        return StepResult.failed(PAYMENT_FAILED, f"capture refused: {rejected}", code=rejected.code)
    if status.captured < order.total:
        return StepResult.failed(
            PAYMENT_FAILED,
            f"captured {_money(status.captured, order)} of {_money(order.total, order)}",
            **_status_evidence(status),
        )
    order.captured = status.captured
    order.payment_status = PaymentState.CAPTURED.value
    return StepResult.passed(
        f"{_money(status.captured, order)} captured", **_status_evidence(status)
    )


__all__ = ["StepContext", "capture", "fraud", "payment", "prohibited_goods"]
