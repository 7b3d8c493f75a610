"""The retry policy, pure: the schedule with its jitter, throttling, ``Retry-After``, when to
give up and when to disable."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orderbridge.bootstrap import build
from orderbridge.settings import Settings
from orderbridge.webhooks.policy import (
    DEFAULT_SCHEDULE,
    AttemptResult,
    RetryPolicy,
    parse_retry_after,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FAILED = AttemptResult(500)
THROTTLED = AttemptResult(429)
TIMED_OUT = AttemptResult(None, timed_out=True)


class Lowest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


class Highest(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


def delay(policy: RetryPolicy, attempt: int, result: AttemptResult, rng: random.Random) -> float:
    moment = policy.next_attempt(attempt, result, NOW, rng)
    assert moment is not None
    return (moment - NOW).total_seconds()


def test_default_schedule_is_5s_5min_30min_2h_5h_10h_10h() -> None:
    assert DEFAULT_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert RetryPolicy().max_attempts == 8
    assert RetryPolicy().disable_after == timedelta(days=5)


@pytest.mark.parametrize("attempt", range(1, 8))
def test_each_retry_waits_its_scheduled_delay_within_20_percent(attempt: int) -> None:
    policy = RetryPolicy()
    base = DEFAULT_SCHEDULE[attempt - 1]
    assert delay(policy, attempt, FAILED, Lowest()) == pytest.approx(base * 0.8)
    assert delay(policy, attempt, FAILED, Highest()) == pytest.approx(base * 1.2)
    drawn = {delay(policy, attempt, FAILED, random.Random(seed)) for seed in range(20)}
    assert len(drawn) == 20  # jittered: no two retries in lockstep
    assert all(base * 0.8 <= d <= base * 1.2 for d in drawn)


def test_after_the_eighth_attempt_the_delivery_is_given_up() -> None:
    assert RetryPolicy().next_attempt(8, FAILED, NOW) is None
    assert RetryPolicy(schedule=(1.0,)).next_attempt(2, FAILED, NOW) is None


@pytest.mark.parametrize("result", [AttemptResult(200), AttemptResult(204), AttemptResult(410)])
def test_success_and_gone_are_never_retried(result: AttemptResult) -> None:
    assert RetryPolicy().next_attempt(1, result, NOW) is None


@pytest.mark.parametrize("code", [301, 302, 400, 404, 500, 503, None])
def test_other_answers_and_connection_errors_are_retried(code: int | None) -> None:
    assert RetryPolicy().next_attempt(1, AttemptResult(code), NOW) is not None


@pytest.mark.parametrize("result", [THROTTLED, TIMED_OUT])
@pytest.mark.parametrize("rng", [Lowest(), Highest(), random.Random(3)])
def test_throttling_and_timeouts_wait_at_least_a_minute(
    result: AttemptResult, rng: random.Random
) -> None:
    assert delay(RetryPolicy(), 1, result, rng) >= 60
    assert delay(RetryPolicy(), 1, result, rng) <= 60 * 1.2
    # Later steps of the schedule are longer than a minute already.
    assert delay(RetryPolicy(), 3, result, Lowest()) == pytest.approx(1800 * 0.8)


def test_retry_after_longer_than_the_schedule_is_honoured() -> None:
    wish = AttemptResult(429, retry_after=600)
    assert delay(RetryPolicy(), 1, wish, Highest()) == 600
    assert delay(RetryPolicy(), 1, AttemptResult(503, retry_after=90), Lowest()) == 90


def test_retry_after_shorter_than_the_schedule_does_not_hurry_us() -> None:
    wish = AttemptResult(503, retry_after=1)
    assert delay(RetryPolicy(), 2, wish, Lowest()) == pytest.approx(300 * 0.8)


def test_retry_after_is_capped_at_six_hours() -> None:
    wish = AttemptResult(429, retry_after=10 * 86400)
    assert delay(RetryPolicy(), 1, wish, Highest()) == 6 * 3600


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after(" 7 ", NOW) == 7
    assert parse_retry_after("Thu, 01 Jan 2026 00:10:00 GMT", NOW) == 600
    assert parse_retry_after("Wed, 31 Dec 2025 23:00:00 GMT", NOW) == 0  # in the past
    for nonsense in (None, "", "soon", "-5", "1.5"):
        assert parse_retry_after(nonsense, NOW) is None


def test_an_endpoint_is_disabled_only_after_the_whole_period_without_success() -> None:
    policy = RetryPolicy()
    since = NOW - timedelta(days=5)
    assert policy.should_disable(since, NOW)
    assert not policy.should_disable(since + timedelta(seconds=1), NOW)
    assert not policy.should_disable(None, NOW)


def test_schedule_and_disable_period_come_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
        data_dir=tmp_path,
        secret_keys="k",
        webhook_retry_schedule="1, 2,3",
        webhook_disable_after_hours=2,
    )
    policy = build(settings).retry_policy()
    assert policy.schedule == (1, 2, 3)
    assert policy.disable_after == timedelta(hours=2)
