"""When to try a failed job again. Pure."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: base × factor^(attempt−1), capped, with ± jitter so that jobs
    that failed together do not retry together."""

    base_seconds: float = 2.0
    factor: float = 3.0
    max_seconds: float = 3600.0
    jitter: float = 0.2

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        seconds = min(self.max_seconds, self.base_seconds * self.factor ** max(0, attempt - 1))
        spread = seconds * self.jitter
        seconds += (rng or random).uniform(-spread, spread)
        return timedelta(seconds=max(0.0, seconds))


DEFAULT_RETRY = RetryPolicy()
