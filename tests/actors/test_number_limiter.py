"""The number limiter's spacing keeps every sliding second at Meta within the
number's limit, however the allowed lateness and network delay fall."""

from __future__ import annotations

import bisect

from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors.actors.number_limiter import late_after, throughput_rate
from lawhub_actors.settings import Limits, PhoneNumber


def _busiest_second(arrivals: list[float]) -> int:
    arrivals = sorted(arrivals)
    return max(bisect.bisect_left(arrivals, t + 1.0) - i for i, t in enumerate(arrivals))


def _number(mps: int) -> PhoneNumber:
    return PhoneNumber(id="106540352242922", display="+62 811 1000 001", tier="unlimited",
                       throughput_mps=mps)


SHARE = st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0)
"""Of a delay's allowance: the extremes are where a second fills up."""


@given(mps=st.integers(1, 1000), headroom=st.sampled_from([0.02, 0.05, 0.1]),
       delays=st.lists(SHARE, min_size=1, max_size=400), data=st.data())
def test_sends_late_within_the_allowance_never_put_more_than_the_limit_in_a_second(
        mps: int, headroom: float, delays: list[float], data: st.DataObject) -> None:
    rate = throughput_rate(_number(mps), Limits(throughput_headroom=headroom))
    allowed = late_after(rate, headroom)
    network = headroom / (1.0 - headroom) / 2  # the network's half of the jitter budget
    arrivals = [k * rate.interval + share * allowed
                + data.draw(SHARE) * network
                for k, share in enumerate(delays)]
    assert _busiest_second(arrivals) <= mps


def test_a_call_may_be_late_by_half_the_jitter_budget_or_half_an_interval_whichever_is_less() -> None:
    limits = Limits()  # 2 % headroom: a 20.4 ms jitter budget
    assert late_after(throughput_rate(_number(20), limits), 0.02) == 0.02 / 0.98 / 2
    fast = throughput_rate(_number(1000), limits)
    assert late_after(fast, 0.02) == fast.interval / 2
