"""Slowing down password guessing: after ``limit`` failed sign-ins for one email or from
one client address within ``window``, further attempts for it are refused until the oldest
failure leaves the window. Kept in the process's memory: a restart forgets it, and several
API processes each count their own (the argon2 cost still bounds guessing per process)."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from orderbridge.clock import Clock


class LoginThrottle:
    def __init__(
        self, clock: Clock, *, limit: int = 10, window: timedelta = timedelta(minutes=15)
    ) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}

    def _recent(self, key: str) -> deque[datetime]:
        failures = self._failures.setdefault(key, deque())
        horizon = self.clock.now() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return deque()
        return failures

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(key)) >= self.limit for key in keys)

    def failed(self, *keys: str) -> None:
        if len(self._failures) > 100_000:
            self._failures.clear()  # bounded memory under a flood of made-up emails
        now = self.clock.now()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
