"""What to do after an attempt: retry when, give up, or disable the endpoint. Pure.

Defaults follow Svix's published schedule (contract §6, reference/webhooks.md §1): after the
first try, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each ± 20 % jitter, about 28 hours in
all. A 429 or a timeout waits at least a minute; ``Retry-After`` is honoured between the
scheduled delay and six hours. ``410 Gone`` disables the endpoint at once; an endpoint that
has failed without a single success for ``disable_after`` is disabled too.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

DEFAULT_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
THROTTLED_MIN_SECONDS = 60.0
RETRY_AFTER_MAX_SECONDS = 6 * 3600.0


class AttemptOutcome(StrEnum):
    SUCCEEDED = "succeeded"  # any 2xx
    GONE = "gone"  # 410: the receiver asks us to stop
    THROTTLED = "throttled"  # 429, or a timeout: back off harder
    FAILED = "failed"  # anything else, connection errors included


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None  # None: no HTTP answer (connection error, timeout)
    timed_out: bool = False
    retry_after: float | None = None  # seconds, from the Retry-After header

    @property
    def outcome(self) -> AttemptOutcome:
        code = self.status_code
        if code is not None and 200 <= code < 300:
            return AttemptOutcome.SUCCEEDED
        if code == 410:
            return AttemptOutcome.GONE
        if code == 429 or self.timed_out:
            return AttemptOutcome.THROTTLED
        return AttemptOutcome.FAILED


@dataclass(frozen=True)
class RetryPolicy:
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    jitter: float = 0.2
    disable_after: timedelta = timedelta(hours=120)

    @property
    def max_attempts(self) -> int:
        return len(self.schedule) + 1

    def next_attempt(
        self, attempt: int, result: AttemptResult, now: datetime, rng: random.Random | None = None
    ) -> datetime | None:
        """When to try again after attempt number ``attempt`` (1-based) failed; None to give
        up."""
        if result.outcome in (AttemptOutcome.SUCCEEDED, AttemptOutcome.GONE):
            return None
        if attempt > len(self.schedule):
            return None
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        delay = self.schedule[attempt - 1] * (1 + spread)
        if result.outcome is AttemptOutcome.THROTTLED:
            # The minute is a floor: jitter spreads throttled retries above it, never below.
            delay = max(delay, THROTTLED_MIN_SECONDS * (1 + abs(spread)))
        if result.retry_after is not None:
            # The receiver's own wish wins over the schedule, within bounds.
            delay = max(delay, min(result.retry_after, RETRY_AFTER_MAX_SECONDS))
        return now + timedelta(seconds=delay)

    def should_disable(self, failing_since: datetime | None, now: datetime) -> bool:
        return failing_since is not None and now - failing_since >= self.disable_after


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - now).total_seconds())
