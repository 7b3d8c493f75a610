"""Identifiers: event ids, order ids, keys.

Event ids are 16 characters of Crockford base32 (80 bits): the feed position of the event,
``txid`` (48 bits) then ``position`` within that transaction (32 bits). The alphabet is in
ASCII order, so the strings sort exactly like the positions: an event id is a cursor.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(CROCKFORD)}
# Crockford's decoder is lenient about look-alikes; we accept them on input.
_DECODE.update({"O": 0, "I": 1, "L": 1})

EVENT_ID_LENGTH = 16
_TXID_BITS = 48
_POS_BITS = 32

# Canonical (no leading zero) and bounded, so that a number always fits a BIGINT.
ORDER_ID_RE = re.compile(r"^([1-9]\d{0,17})-([1-9]\d{0,17})$")
STORE_ID_RE = re.compile(r"^\d{1,18}$")


# Every 10-bit value as its two characters: an event id is 8 lookups rather than 16 steps
# (a third of the cost; every event of the feed and of a webhook pays it).
_PAIRS = [CROCKFORD[n >> 5] + CROCKFORD[n & 31] for n in range(1024)]


def b32encode(value: int, length: int) -> str:
    if value < 0 or value >> (5 * length):
        raise ValueError("value does not fit")
    pairs, odd = divmod(length, 2)
    chars = [CROCKFORD[value & 31]] if odd else []
    value >>= 5 * odd
    chars += [_PAIRS[(value >> (10 * n)) & 1023] for n in range(pairs)]
    return "".join(reversed(chars))


def b32decode(text: str) -> int:
    value = 0
    for char in text.upper():
        digit = _DECODE.get(char)
        if digit is None:
            raise ValueError(f"not a Crockford base32 character: {char!r}")
        value = value << 5 | digit
    return value


@dataclass(frozen=True, order=True)
class FeedPosition:
    """Where an event stands in the feed: (transaction id, position in that transaction)."""

    txid: int
    pos: int

    def event_id(self) -> str:
        return b32encode(self.txid << _POS_BITS | self.pos, EVENT_ID_LENGTH)

    @classmethod
    def from_event_id(cls, event_id: str) -> FeedPosition:
        if len(event_id) != EVENT_ID_LENGTH:
            raise ValueError("an event id has 16 characters")
        value = b32decode(event_id)
        position = cls(txid=value >> _POS_BITS, pos=value & ((1 << _POS_BITS) - 1))
        if position.pos >= 1 << 31:
            raise ValueError("not an event id")  # positions are signed 32-bit in storage
        return position


def order_public_id(store_id: str, number: int) -> str:
    return f"{store_id}-{number}"


def parse_order_id(order_id: str) -> tuple[str, int] | None:
    match = ORDER_ID_RE.match(order_id)
    if match is None:
        return None
    return match.group(1), int(match.group(2))


def random_token(nbytes: int) -> str:
    """Random Crockford base32 text carrying at least ``nbytes`` bytes of entropy."""
    length = (nbytes * 8 + 4) // 5
    return b32encode(secrets.randbits(length * 5), length)


def new_store_id() -> str:
    return str(secrets.randbelow(900_000) + 100_000)
