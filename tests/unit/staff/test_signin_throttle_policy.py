"""The sign-in throttle's arithmetic: free attempts, doubling waits, the cap, the keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notices.auth import Failures, Throttle, _client_failures_key

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)  # a fixed instant, never compared with today


def wait(throttle: Throttle, count: int, ago_s: float, free: int = 3) -> float:
    failures = Failures(count=count, last_at=NOW - timedelta(seconds=ago_s))
    return throttle.wait_s(failures, free, NOW)


def test_the_free_attempts_wait_for_nothing() -> None:
    throttle = Throttle(delay_s=2, max_delay_s=100)
    assert [wait(throttle, n, 0) for n in range(3)] == [0, 0, 0]
    assert throttle.wait_s(Failures(), 3, NOW) == 0


def test_each_further_attempt_doubles_the_wait_up_to_the_cap() -> None:
    throttle = Throttle(delay_s=2, max_delay_s=100)
    assert [wait(throttle, n, 0) for n in range(3, 10)] == [2, 4, 8, 16, 32, 64, 100]
    # A count in the millions is the cap, not an overflow.
    assert wait(throttle, 10**6, 0) == 100


def test_the_wait_runs_from_the_last_attempt_let_through() -> None:
    throttle = Throttle(delay_s=2, max_delay_s=100)
    assert wait(throttle, 5, 3) == 5
    assert wait(throttle, 5, 8) == 0
    # A last attempt stamped a little in the future (another clock) waits no longer.
    assert wait(throttle, 5, -30) == 8


def test_a_client_key_is_a_valid_bucket_key() -> None:
    assert _client_failures_key("192.0.2.7") == "c.192.0.2.7"
    assert _client_failures_key("2001:db8:1:2::/64") == "c.2001_db8_1_2__/64"
    assert _client_failures_key("") == "c.-"
    assert _client_failures_key("we ird*>") == "c.we_ird__"
