"""Circuit breaker: every transition, and what it never lets through."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors.core.breaker import (
    BreakerPolicy,
    BreakerState,
    Circuit,
    advance,
    may_call,
    record,
    retry_after,
)
from lawhub_actors.settings import Breaker

POLICY = BreakerPolicy(
    failure_threshold=3, failure_rate=0.5, window=4, cooldown_s=5.0, cooldown_max_s=30.0
)


def _feed(state: BreakerState, outcomes: str, now: float = 0.0) -> BreakerState:
    for c in outcomes:
        state = record(state, now, c == "S")
    return state


def _opened(now: float = 100.0, policy: BreakerPolicy = POLICY) -> BreakerState:
    return record(BreakerState(policy), now, False, trip=True)


def _half_open(now: float = 105.0) -> BreakerState:
    allowed, state = may_call(_opened(), now)
    assert allowed and state.name == "half_open"
    return state


def test_policy_field_names_and_defaults_are_the_config_sections() -> None:
    names = [f.name for f in dataclasses.fields(BreakerPolicy)]
    assert names == list(Breaker.model_fields)
    assert BreakerPolicy(**Breaker().model_dump()) == BreakerPolicy()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_threshold": 0},
        {"window": 0},
        {"half_open_probes": 0},
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"cooldown_s": 0.0},
        {"cooldown_s": 10.0, "cooldown_max_s": 5.0},
    ],
)
def test_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must|need"):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]


def test_a_new_breaker_is_closed_and_lets_calls_through() -> None:
    state = BreakerState(POLICY)
    assert (state.name, state.opened_at, state.next_probe_at) == ("closed", None, None)
    assert may_call(state, 0.0) == (True, state)
    assert retry_after(state, 0.0) == 0.0


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ("FF", "closed"),  # below the threshold
        ("FFF", "open"),  # 3 consecutive failures
        ("FFSFF", "open"),  # run reset by S, but the last 4 (F S F F) failed 3/4
        ("FSFS", "closed"),  # window full at rate 0.5, but on a success: never opens
        ("FSFSF", "open"),  # last 4 (S F S F) = 0.5 >= failure_rate, on a failure
        ("SSSF", "closed"),  # rate 0.25
        ("SFS", "closed"),  # fewer than `window` outcomes: no rate yet
        ("FSF", "closed"),  # 2/3 but only 3 seen
    ],
)
def test_closed_opens_on_consecutive_failures_or_failure_rate(outcomes: str, expected: str) -> None:
    assert _feed(BreakerState(POLICY), outcomes).name == expected


def test_a_success_resets_the_consecutive_run() -> None:
    policy = dataclasses.replace(POLICY, failure_rate=1.0)
    state = _feed(BreakerState(policy), "FFSFF")
    assert (state.name, state.failures) == ("closed", 2)
    assert record(state, 0.0, False).name == "open"


def test_the_rate_needs_window_outcomes_and_counts_only_the_last_window() -> None:
    policy = BreakerPolicy(failure_threshold=100, failure_rate=0.5, window=4)
    state = _feed(BreakerState(policy), "FSF")
    assert state.name == "closed"  # 2/3 failed, but only 3 seen
    assert record(state, 0.0, False).name == "open"  # F S F F: 3/4
    state = _feed(BreakerState(policy), "FFSSSSSF")  # last 4: S S S F
    assert state.name == "closed" and state.outcomes == (True, True, True, False)


def test_consecutive_failures_open_with_the_first_cooldown() -> None:
    state = _feed(BreakerState(POLICY), "FFF", now=50.0)
    assert (state.name, state.opened_at, state.next_probe_at, state.opens) == ("open", 50, 55, 1)


def test_trip_opens_at_once_from_closed() -> None:
    state = _opened(100.0)
    assert (state.name, state.opened_at, state.next_probe_at) == ("open", 100.0, 105.0)


def test_trip_must_be_a_failure() -> None:
    with pytest.raises(ValueError, match="trip"):
        record(BreakerState(POLICY), 0.0, True, trip=True)


def test_open_refuses_until_the_cooldown_and_says_how_long() -> None:
    state = _opened(100.0)
    assert may_call(state, 104.9) == (False, state)
    assert retry_after(state, 101.0) == pytest.approx(4.0)
    assert retry_after(state, 200.0) == 0.0


def test_outcomes_while_open_are_late_and_ignored() -> None:
    state = _opened(100.0)
    assert record(state, 101.0, True) == state
    assert record(state, 101.0, False) == state
    assert record(state, 101.0, False, trip=True) == state


def test_after_the_cooldown_open_becomes_half_open_and_lets_probes_through() -> None:
    state = _opened(100.0)
    assert advance(state, 105.0).name == "half_open"
    allowed, state = may_call(state, 105.0)
    assert allowed and (state.name, state.probes, state.in_flight) == ("half_open", 1, 1)
    allowed, state = may_call(state, 105.1)
    assert allowed and state.probes == 2
    allowed, after = may_call(state, 105.2)
    assert not allowed and after == state  # half_open_probes = 2
    assert retry_after(state, 105.2) == 0.0


def test_all_probes_passing_closes_with_a_fresh_history() -> None:
    state = _half_open()
    _, state = may_call(state, 105.0)
    state = record(state, 105.5, True)
    assert (state.name, state.passed) == ("half_open", 1)
    state = record(state, 105.6, True)
    assert state == BreakerState(POLICY)


def test_a_failed_probe_reopens_with_a_doubled_cooldown() -> None:
    state = record(_half_open(105.0), 106.0, False)
    assert (state.name, state.opened_at, state.next_probe_at, state.opens) == ("open", 106, 116, 2)


def test_a_trip_in_half_open_reopens() -> None:
    assert record(_half_open(), 106.0, False, trip=True).name == "open"


def test_cooldown_grows_exponentially_up_to_the_cap_and_resets_after_closing() -> None:
    state, now, cooldowns = _opened(0.0), 0.0, []
    for _ in range(6):
        cooldowns.append(state.next_probe_at - state.opened_at)  # type: ignore[operator]
        now = state.next_probe_at  # type: ignore[assignment]
        _, state = may_call(state, now)
        state = record(state, now, False)
    assert cooldowns == [5, 10, 20, 30, 30, 30]
    _, state = may_call(state, state.next_probe_at)  # type: ignore[arg-type]
    _, state = may_call(state, state.next_probe_at)  # type: ignore[arg-type]
    state = record(record(state, 0.0, True), 0.0, True)
    assert state.name == "closed" and state.opens == 0
    assert record(state, 1000.0, False, trip=True).next_probe_at == 1005.0


def test_an_outcome_with_no_probe_in_flight_is_late_and_ignored() -> None:
    state = record(_half_open(), 106.0, True)  # the one probe in flight answered
    assert record(state, 106.1, False) == state
    assert record(state, 106.1, True) == state


def test_lost_probes_reopen_after_cooldown_max_rather_than_wedging() -> None:
    state = _half_open(105.0)
    _, state = may_call(state, 106.0)
    assert may_call(state, 106.0 + 29.9) == (False, state)
    allowed, state = may_call(state, 106.0 + 30.0)
    assert not allowed and (state.name, state.opens) == ("open", 2)


def test_an_unfilled_half_open_is_not_lost_it_waits_for_a_call() -> None:
    state = _half_open(105.0)
    state = record(state, 105.5, True)
    allowed, state = may_call(state, 10_000.0)
    assert allowed and state.name == "half_open"


def test_states_are_values() -> None:
    state = BreakerState(POLICY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.name = Circuit.OPEN  # type: ignore[misc]
    assert Circuit.HALF_OPEN == "half_open"


# --- properties ------------------------------------------------------------

_ops = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=20.0),
        st.sampled_from(["call", "ok", "fail", "trip"]),
    ),
    max_size=120,
)
_policies = st.builds(
    BreakerPolicy,
    failure_threshold=st.integers(1, 6),
    failure_rate=st.sampled_from([0.25, 0.5, 1.0]),
    window=st.integers(1, 8),
    cooldown_s=st.sampled_from([1.0, 5.0]),
    cooldown_max_s=st.sampled_from([5.0, 40.0]),
    half_open_probes=st.integers(1, 4),
)


@given(policy=_policies, ops=_ops)
def test_never_calls_while_open_nor_more_probes_than_allowed(
    policy: BreakerPolicy, ops: list[tuple[float, str]]
) -> None:
    state, now, probes_this_half_open = BreakerState(policy), 0.0, 0
    for step, op in ops:
        now += step
        before = state
        if op == "call":
            allowed, state = may_call(state, now)
            if before.name == "open" and before.next_probe_at is not None:
                assert allowed == (now >= before.next_probe_at)
            if allowed and state.name == "half_open":
                probes_this_half_open += 1
                assert probes_this_half_open <= policy.half_open_probes
            if not allowed:
                assert state.name != "closed"
        else:
            state = record(state, now, op == "ok", trip=op == "trip")
        if state.name != "half_open":
            probes_this_half_open = 0
        if state.name == "closed":
            assert state.opened_at is None and state.next_probe_at is None
            assert len(state.outcomes) <= policy.window
        else:
            assert state.opened_at is not None and state.next_probe_at is not None
            gap = state.next_probe_at - state.opened_at
            assert policy.cooldown_s - 1e-9 <= gap <= policy.cooldown_max_s + 1e-9
        if state.name == "open":
            assert retry_after(state, now) == pytest.approx(max(0.0, state.next_probe_at - now))  # type: ignore[operator]
        if state.name == "half_open":
            assert 0 <= state.passed <= state.probes <= policy.half_open_probes


@given(policy=_policies, ops=_ops)
def test_threshold_many_consecutive_failures_always_open(
    policy: BreakerPolicy, ops: list[tuple[float, str]]
) -> None:
    state = BreakerState(policy)
    for _, op in ops:
        state = record(state, 0.0, op == "ok")
        if state.name == "open":
            return
        assert state.failures < policy.failure_threshold
