"""The 24-hour customer-service window, at its edges."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors.core.window import WINDOW_S, allows_freeform, open_until, refresh, remaining

T0 = 1_700_000_000.0


def test_the_window_lasts_exactly_24_hours_from_the_last_inbound_message() -> None:
    assert WINDOW_S == 86_400
    assert open_until(T0) == T0 + 86_400


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (T0, True),  # the instant the customer wrote
        (T0 + 1, True),
        (T0 + 86_399.999, True),  # the last moment inside
        (T0 + 86_400, False),  # exactly 24 h: closed (half-open window)
        (T0 + 86_400.001, False),
        (T0 + 7 * 86_400, False),
        (T0 - 5, True),  # our clock a little behind Meta's timestamp
    ],
)
def test_freeform_is_allowed_only_inside_the_half_open_window(now: float, expected: bool) -> None:
    assert allows_freeform(T0, now) is expected


def test_a_customer_who_never_wrote_gets_templates_only() -> None:
    assert allows_freeform(None, T0) is False
    assert remaining(None, T0) == 0.0


def test_non_finite_timestamps_never_open_the_window() -> None:
    assert allows_freeform(math.nan, T0) is False
    assert allows_freeform(T0, math.nan) is False
    assert allows_freeform(math.inf, T0) is False


def test_remaining_counts_down_to_zero_at_the_edge() -> None:
    assert remaining(T0, T0) == 86_400
    assert remaining(T0, T0 + 86_000) == 400
    assert remaining(T0, T0 + 86_400) == 0.0
    assert remaining(T0, T0 - 100) == 86_400  # never more than a full window


def test_a_late_older_message_never_shortens_the_window() -> None:
    assert refresh(None, T0) == T0
    assert refresh(T0, T0 + 60) == T0 + 60
    assert refresh(T0 + 60, T0) == T0 + 60


@given(
    last=st.floats(min_value=0, max_value=4e9),
    offset=st.floats(min_value=0, max_value=3 * 86_400),
)
def test_freeform_is_allowed_iff_now_is_before_open_until(last: float, offset: float) -> None:
    now = last + offset
    assert allows_freeform(last, now) is (now < open_until(last))
