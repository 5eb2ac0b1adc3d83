"""Backoff with full jitter: bounded, exponential, capped."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors.core.retry import backoff_delay


def test_the_ceiling_doubles_per_attempt_until_the_cap() -> None:
    top = [backoff_delay(n, 1.0, 60.0, lambda: 0.999999) for n in range(8)]
    assert [round(t) for t in top] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_full_jitter_can_wait_nothing_at_all() -> None:
    assert backoff_delay(5, 1.0, 60.0, lambda: 0.0) == 0.0


@given(
    attempt=st.integers(min_value=-3, max_value=10_000),
    base=st.floats(min_value=0.001, max_value=10),
    cap=st.floats(min_value=10, max_value=3600),
    u=st.floats(min_value=0, max_value=0.999999),
)
def test_a_delay_is_never_negative_nor_above_the_cap(attempt, base, cap, u) -> None:
    assert 0.0 <= backoff_delay(attempt, base, cap, lambda: u) <= cap
