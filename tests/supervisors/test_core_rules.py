"""The pure parts: restart table, plans, intensity, backoff, routing, specs."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisors import Backoff, ChildSpec, MailboxSpec, Restart, Strategy
from supervisors.backoff import restart_delay
from supervisors.errors import InvalidSpec
from supervisors.intensity import RecentRestarts, RestartIntensity
from supervisors.routing import consistent_index, jump_hash
from supervisors.spec import check_children
from supervisors.strategy import ExitKind, plan, should_restart
from tests.supervisors.helpers import Recorder


@pytest.mark.parametrize(
    ("restart", "kind", "expected"),
    [
        (Restart.PERMANENT, ExitKind.CRASH, True),
        (Restart.PERMANENT, ExitKind.NORMAL, True),
        (Restart.TRANSIENT, ExitKind.CRASH, True),
        (Restart.TRANSIENT, ExitKind.NORMAL, False),
        (Restart.TRANSIENT, ExitKind.SHUTDOWN, False),
        (Restart.TEMPORARY, ExitKind.CRASH, False),
        (Restart.TEMPORARY, ExitKind.NORMAL, False),
    ],
)
def test_restart_type_decides_which_exits_restart(
    restart: Restart, kind: ExitKind, expected: bool
) -> None:
    assert should_restart(restart, kind) is expected


def test_one_for_one_plans_only_the_failed_child() -> None:
    steps = plan(Strategy.ONE_FOR_ONE, ["a", "b", "c"], "b")
    assert steps.stop == () and steps.start == ("b",)


def test_one_for_all_stops_others_in_reverse_and_starts_all_in_order() -> None:
    steps = plan(Strategy.ONE_FOR_ALL, ["a", "b", "c", "d"], "b")
    assert steps.stop == ("d", "c", "a")
    assert steps.start == ("a", "b", "c", "d")


def test_rest_for_one_restarts_the_failed_child_and_those_after_it() -> None:
    steps = plan(Strategy.REST_FOR_ONE, ["a", "b", "c", "d"], "b")
    assert steps.stop == ("d", "c")
    assert steps.start == ("b", "c", "d")


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
def test_temporary_siblings_are_stopped_with_the_others_but_never_started_again(
    strategy: Strategy,
) -> None:
    steps = plan(strategy, ["a", "b", "c", "d"], "b", temporary=frozenset({"c", "a"}))
    assert "c" in steps.stop and "c" not in steps.start and "a" not in steps.start
    assert steps.start[0] == "b" and steps.start[-1] == "d"


def test_intensity_allows_max_restarts_and_refuses_one_more_within_the_period() -> None:
    intensity = RestartIntensity(max_restarts=3, period_s=10.0)
    assert [intensity.add(t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert intensity.add(3.0) is False


def test_intensity_forgets_restarts_older_than_the_period() -> None:
    intensity = RestartIntensity(max_restarts=2, period_s=10.0)
    assert all(intensity.add(t) for t in (0.0, 11.0, 22.0, 33.0, 44.0))
    assert intensity.count(44.0) == 1


def test_recent_restarts_counts_total_and_within_period() -> None:
    recent = RecentRestarts()
    for t in (0.0, 5.0, 9.0):
        recent.add(t)
    assert recent.total == 3
    assert recent.within(12.0, 10.0) == 2


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    backoff = Backoff(min_s=0.01, max_s=0.1, multiplier=2.0, jitter=0.0)
    delays = [restart_delay(backoff, n, lambda: 0.5) for n in range(6)]
    assert delays == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.1, 0.1])


@given(n=st.integers(min_value=0, max_value=10_000), u=st.floats(min_value=0.0, max_value=0.999))
def test_backoff_with_jitter_stays_within_min_and_max(n: int, u: float) -> None:
    backoff = Backoff(min_s=0.005, max_s=5.0, multiplier=2.0, jitter=0.5)
    assert 0.005 <= restart_delay(backoff, n, lambda: u) <= 5.0


def test_jitter_spreads_first_restarts_above_min_and_capped_ones_below_max() -> None:
    backoff = Backoff(min_s=0.01, max_s=1.0, multiplier=2.0, jitter=0.5)
    first = [restart_delay(backoff, 0, lambda u=u: u) for u in (0.0, 0.5, 0.999)]
    assert first == pytest.approx([0.01, 0.0125, 0.015], rel=1e-3)
    capped = [restart_delay(backoff, 30, lambda u=u: u) for u in (0.0, 0.999)]
    assert capped == pytest.approx([0.5, 1.0], rel=1e-3)


def test_jump_hash_spreads_keys_evenly() -> None:
    counts = Counter(consistent_index(f"conversation-{i}", 8) for i in range(40_000))
    assert set(counts) == set(range(8))
    assert max(counts.values()) / min(counts.values()) < 1.15


@given(key=st.integers(min_value=0, max_value=2**64 - 1), n=st.integers(1, 64), extra=st.integers(1, 64))
def test_jump_hash_moves_keys_only_onto_new_buckets_when_growing(key: int, n: int, extra: int) -> None:
    before, after = jump_hash(key, n), jump_hash(key, n + extra)
    assert after == before or after >= n


def test_invalid_specs_are_refused_with_a_reason() -> None:
    with pytest.raises(InvalidSpec, match="'/'"):
        ChildSpec("a/b", lambda: Recorder("x", None)).check()  # type: ignore[arg-type]
    with pytest.raises(InvalidSpec, match="capacity"):
        MailboxSpec(capacity=0).check()
    with pytest.raises(InvalidSpec, match="min_s <= max_s"):
        Backoff(min_s=2.0, max_s=1.0).check()
    spec = ChildSpec("a", lambda: Recorder("x", None))  # type: ignore[arg-type]
    with pytest.raises(InvalidSpec, match="duplicate"):
        check_children([spec, spec])
