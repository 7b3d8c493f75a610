from __future__ import annotations

import random

import pytest

from orderbridge.ids import CROCKFORD, FeedPosition, b32decode, b32encode, parse_order_id


def test_event_id_is_16_crockford_characters_and_round_trips() -> None:
    position = FeedPosition(txid=123_456_789, pos=7)
    event_id = position.event_id()
    assert len(event_id) == 16 and set(event_id) <= set(CROCKFORD)
    assert FeedPosition.from_event_id(event_id) == position
    assert FeedPosition.from_event_id(event_id.lower()) == position


def test_event_ids_sort_as_text_exactly_like_feed_positions() -> None:
    rng = random.Random(7)
    positions = [FeedPosition(rng.randrange(2**48), rng.randrange(2**32)) for _ in range(2000)]
    positions += [FeedPosition(5, 1), FeedPosition(5, 2), FeedPosition(6, 0)]
    by_text = sorted(positions, key=lambda p: p.event_id())
    assert by_text == sorted(positions)


@pytest.mark.parametrize("bad", ["", "short", "0" * 17, "UUUUUUUUUUUUUUUU", "!!!!!!!!!!!!!!!!"])
def test_malformed_event_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        FeedPosition.from_event_id(bad)


def test_encoding_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError):
        b32encode(32**3, 3)
    assert b32decode(b32encode(32**3 - 1, 3)) == 32**3 - 1


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("310678-936140", ("310678", 936140)),
        ("1-1", ("1", 1)),
        ("310678", None),
        ("a-1", None),
        ("1-", None),
        ("-1", None),
        ("1-2-3", None),
        (" 1-2", None),
    ],
)
def test_order_ids_follow_the_documented_pattern(text: str, parsed: tuple[str, int] | None) -> None:
    assert parse_order_id(text) == parsed
