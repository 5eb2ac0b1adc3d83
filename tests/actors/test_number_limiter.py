"""The number limiter's spacing keeps every sliding second at Meta within the
number's limit, however the allowed lateness and network delay fall."""

from __future__ import annotations

import bisect

from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors.actors.number_limiter import LATE_FLOOR_S, late_after, throughput_rate
from lawhub_actors.settings import Limits, PhoneNumber


def _busiest_second(arrivals: list[float]) -> int:
    """The most arrivals in any window [t, t + 1 s), to within float rounding."""
    arrivals = sorted(arrivals)
    return max(bisect.bisect_left(arrivals, t + 1.0 - 1e-9) - i for i, t in enumerate(arrivals))


def _number(mps: int) -> PhoneNumber:
    return PhoneNumber(id="106540352242922", display="+62 811 1000 001", tier="unlimited",
                       throughput_mps=mps)


SHARE = st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0)
"""Of a delay's allowance: the extremes are where a second fills up."""


@given(mps=st.integers(1, 1000), headroom=st.sampled_from([0.02, 0.05, 0.1]),
       lateness=st.lists(SHARE, min_size=1, max_size=60),
       network=st.lists(SHARE, min_size=1, max_size=60))
def test_sends_late_within_the_allowance_never_put_more_than_the_limit_in_a_second(
        mps: int, headroom: float, lateness: list[float], network: list[float]) -> None:
    rate = throughput_rate(_number(mps), Limits(throughput_headroom=headroom))
    allowed = late_after(headroom)
    on_the_wire = headroom / (1.0 - headroom) / 2  # the network's half of the jitter budget
    sends = int(mps * 1.2) + 2  # past one second and the budget: every window is full
    arrivals = [k * rate.interval + lateness[k % len(lateness)] * allowed
                + network[k % len(network)] * on_the_wire for k in range(sends)]
    assert _busiest_second(arrivals) <= mps


def test_a_call_may_be_late_by_half_the_jitter_budget_whatever_the_rate() -> None:
    assert late_after(0.02) == 0.02 / 0.98 / 2  # 10.2 ms, at 20/s as at 1,000/s
    assert late_after(0.0) == LATE_FLOOR_S  # no budget: still not every call sent round
