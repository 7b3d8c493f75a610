"""What the dispatcher knows of each endpoint it sends to: URL, signing secrets, limits, and
how many deliveries it may hold (its concurrency plus what it claims ahead), read from the
database at most once per ``TARGET_TTL``.

Freshness: a rotated secret, a new URL or new limits take effect within ``TARGET_TTL``
(1 s). Disabling takes effect at once (the claim query only picks enabled endpoints), and a
secret that expires is dropped at its expiry (the cache entry goes stale then).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from aiolimiter import AsyncLimiter
from sqlalchemy.ext.asyncio import AsyncSession

from orderbridge.crypto import SecretBox
from orderbridge.outbound.signing import Signer
from orderbridge.webhooks import claims

TARGET_TTL = 1.0


# How many requests' worth of an endpoint's deliveries wait in memory beyond its slots.
AHEAD_SLOTS = 6


def claim_ahead(cap: int, ordered: bool, rate_limit: float | None) -> int:
    """How many deliveries of an endpoint are claimed beyond its concurrency, so that a
    sender that finishes takes the next one from memory instead of waiting for a claim.

    Measured: claiming only into free slots left the dispatcher waiting on the claim
    query between bursts. With two slots' worth ahead, a fast endpoint's lane still ran
    dry while a claim was under way: on PostgreSQL a claim of 100-200 deliveries takes
    25-45 ms beside a busy sender loop, and 100 senders empty two slots' worth in about
    as long (on average 19 of 100 slots idle, 4,500 deliveries/s). Six slots' worth: 8 of
    100 idle, 5,300/s in the same run. A delivery then waits in memory at most six
    requests of its endpoint; ``DispatcherOptions.lease`` covers that. None for an ordered
    endpoint (the next delivery may only be claimed once the previous one is finished);
    for a rate-limited one at most a second's worth."""
    if ordered:
        return 0
    if rate_limit:
        return min(AHEAD_SLOTS * cap, max(1, int(rate_limit)))
    return AHEAD_SLOTS * cap


@dataclass
class Target:
    """An endpoint as the dispatcher sends to it, cached for ``TARGET_TTL``."""

    id: str
    url: str
    cap: int  # concurrent requests: 1 if ordered, else max_concurrency
    depth: int  # deliveries held at most: cap plus those claimed ahead
    # Claim again once the endpoint holds this few: half of what it claims ahead is used
    # (without claiming ahead: an eighth of its slots is free), so its lane refills while
    # its senders are still busy.
    refill_at: int
    signer: Signer | None  # None: no live secret (cannot happen unless rows were removed)
    limiter: AsyncLimiter | None
    loaded_at: float  # time.monotonic()
    valid_until: datetime | None  # the first expiry of a live secret


class Targets:
    """The dispatcher's cache of endpoint targets."""

    def __init__(self, box: SecretBox) -> None:
        self.box = box
        self._cached: dict[str, Target] = {}
        self._limiters: dict[tuple[str, float], AsyncLimiter] = {}
        self._plaintext: dict[int, str] = {}  # secret row id -> secret (rows never change)

    def get(self, endpoint_id: str) -> Target | None:
        return self._cached.get(endpoint_id)

    def all(self) -> list[Target]:
        return list(self._cached.values())

    # For an endpoint not (or no longer) known: one delivery at a time, refill when empty.
    def cap(self, endpoint_id: str) -> int:
        target = self._cached.get(endpoint_id)
        return target.cap if target else 1

    def depth(self, endpoint_id: str) -> int:
        target = self._cached.get(endpoint_id)
        return target.depth if target else 1

    def refill_at(self, endpoint_id: str) -> int:
        target = self._cached.get(endpoint_id)
        return target.refill_at if target else 0

    def cached(self, ids: set[str], now: datetime) -> dict[str, Target] | None:
        """The endpoints' targets if none of them needs reading again, else None."""
        if self._stale(ids, now):
            return None
        cached = self._cached
        return {ep: cached[ep] for ep in ids}

    def _stale(self, ids: set[str], now: datetime) -> list[str]:
        moment = time.monotonic()
        cached = self._cached
        return [
            ep
            for ep in ids
            if (target := cached.get(ep)) is None
            or moment - target.loaded_at >= TARGET_TTL
            or (target.valid_until is not None and target.valid_until <= now)
        ]

    async def fresh(self, session: AsyncSession, ids: set[str], now: datetime) -> dict[str, Target]:
        """The endpoints' targets, read again when older than ``TARGET_TTL`` (two queries,
        at most about once a second per endpoint under load)."""
        moment = time.monotonic()
        cached = self._cached
        stale = self._stale(ids, now)
        if stale:
            rows = await claims.endpoint_settings(session, stale)
            secrets: dict[str, list[str]] = defaultdict(list)
            valid_until: dict[str, datetime] = {}
            for secret in await claims.live_secret_rows(session, stale, now=now):
                plaintext = self._plaintext.get(secret.id)
                if plaintext is None:
                    plaintext = self.box.decrypt(secret.secret_encrypted)
                    self._plaintext[secret.id] = plaintext
                secrets[secret.endpoint_id].append(plaintext)
                if secret.expires_at is not None:
                    first = valid_until.get(secret.endpoint_id)
                    valid_until[secret.endpoint_id] = (
                        secret.expires_at if first is None else min(first, secret.expires_at)
                    )
            for ep in stale:
                cached.pop(ep, None)
            for row in rows:
                live = secrets.get(row.id)
                cap = 1 if row.ordered else row.max_concurrency
                ahead = claim_ahead(cap, row.ordered, row.rate_limit)
                cached[row.id] = Target(
                    row.id,
                    row.url,
                    cap,
                    cap + ahead,
                    cap + ahead // 2 if ahead else cap * 7 // 8,
                    Signer(live) if live else None,
                    self._limiter(row.id, row.rate_limit),
                    moment,
                    valid_until.get(row.id),
                )
        return {ep: cached[ep] for ep in ids if ep in cached}

    def _limiter(self, endpoint_id: str, rate_limit: float | None) -> AsyncLimiter | None:
        if not rate_limit:
            return None
        key = (endpoint_id, rate_limit)
        limiter = self._limiters.get(key)
        if limiter is None:
            # A bucket of a tenth of a second's worth, so that a burst is not sent all at
            # once; but at least one request, since a request needs a whole unit of
            # capacity (below 10/s the bucket grows to one request and its period with it).
            capacity = max(1.0, rate_limit / 10)
            limiter = AsyncLimiter(capacity, capacity / rate_limit)
            self._limiters[key] = limiter
        return limiter
