"""Slowing down password guessing: after ``per_email`` failed sign-ins for one email, or
``per_address`` from one client address, within ``window``, further attempts for that email
or from that address are refused until the oldest failure leaves the window.

The address limit is much higher than the email one: behind a reverse proxy or an office
NAT many merchants share an address, and a few mistyped passwords must not lock them all
out; it is there to stop one machine trying many emails. Kept in the process's memory: a
restart forgets it, and several API processes each count their own (the argon2 cost still
bounds guessing per process)."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta

from orderbridge.clock import Clock

MAX_TRACKED = 100_000  # keys remembered at most (a flood of made-up emails stays bounded)


class _Window:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.failures: dict[str, deque[datetime]] = {}

    def count(self, key: str, horizon: datetime) -> int:
        failures = self.failures.get(key)
        if failures is None:
            return 0
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self.failures[key]
        return len(failures)

    def add(self, key: str, now: datetime) -> None:
        if len(self.failures) >= MAX_TRACKED:
            self.failures.clear()
        self.failures.setdefault(key, deque()).append(now)


class LoginThrottle:
    def __init__(
        self,
        clock: Clock,
        *,
        per_email: int = 10,
        per_address: int = 100,
        window: timedelta = timedelta(minutes=15),
    ) -> None:
        self.clock = clock
        self.window = window
        self._emails = _Window(per_email)
        self._addresses = _Window(per_address)

    def blocked(self, email: str, address: str) -> bool:
        horizon = self.clock.now() - self.window
        return (
            self._emails.count(email, horizon) >= self._emails.limit
            or self._addresses.count(address, horizon) >= self._addresses.limit
        )

    def failed(self, email: str, address: str) -> None:
        now = self.clock.now()
        self._emails.add(email, now)
        self._addresses.add(address, now)

    def succeeded(self, email: str) -> None:
        self._emails.failures.pop(email, None)
