"""GCRA reservations: the achieved rate is the limit, never above it."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors.core.gcra import SLACK_S, Rate, Reservation, allowed_now, reserve


def _starts(rate: Rate, nows: list[float], tat: float | None = None) -> list[float]:
    starts = []
    for now in nows:
        r = reserve(tat, now, rate)
        starts.append(r.start_at)
        tat = r.tat
    return starts


def test_rate_derives_interval_and_tolerance() -> None:
    rate = Rate(80.0, burst=3)
    assert rate.interval == pytest.approx(0.0125)
    assert rate.tolerance == pytest.approx(0.025)
    assert Rate(80.0).tolerance == 0.0


def test_every_is_the_pair_rate_of_meta() -> None:
    pair = Rate.every(6.0, burst=45)
    assert pair.interval == pytest.approx(6.0)
    assert pair.tolerance == pytest.approx(44 * 6.0)


@pytest.mark.parametrize(
    ("per_second", "burst"), [(0.0, 1), (-1.0, 1), (math.inf, 1), (math.nan, 1), (1.0, 0)]
)
def test_a_rate_refuses_nonsense(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        Rate(per_second, burst)
    with pytest.raises(ValueError, match="must be"):
        Rate.every(0.0)


def test_never_used_starts_at_once_and_stores_now_plus_interval() -> None:
    assert reserve(None, 100.0, Rate(4.0)) == Reservation(start_at=100.0, tat=100.25)
    assert allowed_now(None, 100.0, Rate(4.0))


def test_80_per_second_all_asking_at_once_are_queued_12_5_ms_apart() -> None:
    rate = Rate(80.0)
    starts = _starts(rate, [0.0] * 160)
    assert starts[0] == 0.0
    assert starts[79] == pytest.approx(79 / 80)
    assert starts[80] == pytest.approx(1.0)  # the 81st waits for the next second
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g == pytest.approx(0.0125) for g in gaps)


def test_80_per_second_callers_after_an_idle_second_do_not_wait() -> None:
    rate = Rate(80.0)
    tat = reserve(None, 0.0, rate).tat
    assert not allowed_now(tat, 0.0, rate)
    assert allowed_now(tat, 0.0125, rate)
    assert reserve(tat, 5.0, rate) == Reservation(
        start_at=5.0, tat=5.0125
    )  # idle credit is forgotten


def test_pair_rate_45_at_once_then_one_every_6_seconds() -> None:
    pair = Rate.every(6.0, burst=45)
    starts = _starts(pair, [0.0] * 48)
    assert starts[:45] == [0.0] * 45
    assert starts[45:] == pytest.approx([6.0, 12.0, 18.0])


def test_pair_rate_burst_credit_refills_at_one_per_6_seconds() -> None:
    pair = Rate.every(6.0, burst=45)
    tat: float | None = None
    for _ in range(45):
        tat = reserve(tat, 0.0, pair).tat
    assert not allowed_now(tat, 5.9, pair)
    assert allowed_now(tat, 6.0, pair)
    after_a_minute = _starts(pair, [60.0] * 11, tat)
    assert after_a_minute[:10] == [60.0] * 10  # 60 s idle gave back 10 permits
    assert after_a_minute[10] == pytest.approx(66.0)


def test_a_clock_going_backwards_grants_nothing_extra() -> None:
    rate = Rate(1.0)
    first = reserve(None, 10.0, rate)
    second = reserve(first.tat, 5.0, rate)
    assert second.start_at == 11.0


def test_wait_is_never_negative() -> None:
    r = Reservation(start_at=2.0, tat=3.0)
    assert r.wait(1.5) == 0.5
    assert r.wait(2.5) == 0.0


_rates = st.builds(
    Rate,
    per_second=st.floats(min_value=0.01, max_value=2000.0),
    burst=st.integers(min_value=1, max_value=60),
)


@given(
    rate=_rates,
    steps=st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=150),
    scale=st.sampled_from([0.0, 0.001, 0.1, 1.0]),
)
def test_no_window_ever_holds_more_than_burst_plus_rate_times_its_length(
    rate: Rate, steps: list[float], scale: float
) -> None:
    nows, t = [], 1000.0
    for step in steps:
        t += step * scale
        nows.append(t)
    starts = sorted(_starts(rate, nows))
    assert all(s >= n for s, n in zip(_starts(rate, nows), nows, strict=True))
    # The tightest windows begin and end on a start: [s_i, s_j] holds j - i + 1.
    for i, first in enumerate(starts):
        for j in range(i, len(starts)):
            length = starts[j] - first
            assert j - i + 1 <= rate.burst + (length + SLACK_S) * rate.per_second + 1e-9


@given(rate=_rates, extra=st.integers(min_value=1, max_value=40), now=st.floats(0.0, 1e6))
def test_from_idle_burst_at_once_then_exactly_one_interval_apart(
    rate: Rate, extra: int, now: float
) -> None:
    starts = _starts(rate, [now] * (rate.burst + extra))
    assert starts[: rate.burst] == [now] * rate.burst
    tail = starts[rate.burst - 1 :]
    for a, b in itertools.pairwise(tail):
        assert math.isclose(b - a, rate.interval, rel_tol=1e-6, abs_tol=1e-6)


@given(rate=_rates, tat=st.none() | st.floats(0.0, 1e4), now=st.floats(0.0, 1e4))
def test_allowed_now_agrees_with_reserve(rate: Rate, tat: float | None, now: float) -> None:
    r = reserve(tat, now, rate)
    assert r.start_at >= now
    assert r.tat >= now + rate.interval
    assert allowed_now(tat, now, rate) == (r.start_at == now)
