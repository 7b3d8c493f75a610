"""What a step decides. Pure values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from orderbridge.orders.lifecycle import CancellationReason


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"  # the order is cancelled with ``reason``
    WAIT = "wait"  # ask again at ``until``
    REVIEW = "review"  # a person decides (fraud review queue)


@dataclass(frozen=True)
class StepResult:
    outcome: Outcome
    summary: str  # one sentence for the timeline: which rule fired, what the provider said
    evidence: dict[str, Any] = field(default_factory=dict)
    reason: CancellationReason | None = None
    until: datetime | None = None

    @classmethod
    def passed(cls, summary: str, **evidence: Any) -> StepResult:
        return cls(Outcome.PASS, summary, evidence)

    @classmethod
    def failed(cls, reason: CancellationReason, summary: str, **evidence: Any) -> StepResult:
        return cls(Outcome.FAIL, summary, evidence, reason=reason)

    @classmethod
    def waiting(cls, until: datetime, summary: str, **evidence: Any) -> StepResult:
        return cls(Outcome.WAIT, summary, evidence, until=until)
