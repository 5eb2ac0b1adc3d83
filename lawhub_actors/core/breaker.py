"""Circuit breaker for one business phone number (pure state machine).

States: ``closed`` (calls go through), ``open`` (no call until the
cool-down ends), ``half_open`` (a few probe calls decide). The state is an
immutable :class:`BreakerState` carrying its :class:`BreakerPolicy`; every
function returns a new state. Time is an argument.

Rules:

- ``closed`` → ``open`` on a failure that makes ``failure_threshold``
  consecutive failures, or — once ``window`` outcomes were seen — makes the
  failure rate over the last ``window`` outcomes ``>= failure_rate``. A
  success never opens the circuit.
- ``record(..., trip=True)`` opens at once from ``closed`` or
  ``half_open``: the token or the account is broken (Meta 190, 0, 10, 368,
  131031, …), hammering it only makes things worse. ``trip`` is a failure;
  ``ok=True`` with it is a caller bug (``ValueError``).
- ``open``: :func:`may_call` says no until ``next_probe_at``; the first
  call at or after it moves to ``half_open`` and is the first probe.
- Cool-down of the k-th consecutive open (k = 1, 2, …):
  ``min(cooldown_max_s, cooldown_s * 2**(k-1))``; k goes back to 0 when a
  half-open closes the circuit.
- ``half_open`` lets at most ``half_open_probes`` calls through (probes in
  flight and answered both count). All of them succeeding → ``closed`` with
  a fresh history. Any of them failing → ``open`` again (longer cool-down).
- Outcomes that cannot be a probe's are late answers to calls made before
  the circuit opened, and are ignored: any outcome while ``open``, and one
  while ``half_open`` with no probe in flight.
- A lost probe must not wedge the number: when every probe slot is taken
  and one has gone unanswered for ``cooldown_max_s`` since the last probe
  started, the half-open counts as failed (→ ``open``). Callers should
  still record every granted call (in a ``finally``).

Time-driven moves (cool-down over, probes lost) happen in :func:`advance`,
which :func:`may_call` applies first; :func:`record` never moves on time,
so a late outcome is never mistaken for a probe's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class Circuit(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Event(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    TOO_MANY_FAILURES = "too_many_failures"
    TRIP = "trip"
    LATE = "late"
    COOLDOWN_OVER = "cooldown_over"
    PROBE = "probe"
    PROBES_PASSED = "probes_passed"
    PROBES_LOST = "probes_lost"


_TRANSITIONS: dict[tuple[Circuit, Event], Circuit] = {
    (Circuit.CLOSED, Event.SUCCESS): Circuit.CLOSED,
    (Circuit.CLOSED, Event.FAILURE): Circuit.CLOSED,
    (Circuit.CLOSED, Event.TOO_MANY_FAILURES): Circuit.OPEN,
    (Circuit.CLOSED, Event.TRIP): Circuit.OPEN,
    (Circuit.OPEN, Event.LATE): Circuit.OPEN,
    (Circuit.OPEN, Event.COOLDOWN_OVER): Circuit.HALF_OPEN,
    (Circuit.HALF_OPEN, Event.PROBE): Circuit.HALF_OPEN,
    (Circuit.HALF_OPEN, Event.SUCCESS): Circuit.HALF_OPEN,
    (Circuit.HALF_OPEN, Event.PROBES_PASSED): Circuit.CLOSED,
    (Circuit.HALF_OPEN, Event.FAILURE): Circuit.OPEN,
    (Circuit.HALF_OPEN, Event.TRIP): Circuit.OPEN,
    (Circuit.HALF_OPEN, Event.PROBES_LOST): Circuit.OPEN,
    (Circuit.HALF_OPEN, Event.LATE): Circuit.HALF_OPEN,
}


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Thresholds; field names are those of the ``[breaker]`` config section."""

    failure_threshold: int = 5
    failure_rate: float = 0.5
    window: int = 20
    cooldown_s: float = 5.0
    cooldown_max_s: float = 300.0
    half_open_probes: int = 2

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.window < 1 or self.half_open_probes < 1:
            raise ValueError("failure_threshold, window and half_open_probes must be >= 1")
        if not 0 < self.failure_rate <= 1:
            raise ValueError(f"failure_rate must be in (0, 1], not {self.failure_rate}")
        if not 0 < self.cooldown_s <= self.cooldown_max_s:
            raise ValueError("need 0 < cooldown_s <= cooldown_max_s")

    def cooldown(self, opens: int) -> float:
        """Cool-down of the ``opens``-th consecutive open (1-based)."""
        return min(self.cooldown_max_s, self.cooldown_s * 2.0 ** min(max(opens - 1, 0), 64))


@dataclass(frozen=True, slots=True)
class BreakerState:
    """One phone number's breaker; ``BreakerState(policy)`` is a new, closed one."""

    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    name: Circuit = Circuit.CLOSED
    opened_at: float | None = None  # open / half_open: when it last opened
    next_probe_at: float | None = None  # open / half_open: when the cool-down ends
    opens: int = 0  # consecutive opens since the circuit last closed after a half-open
    failures: int = 0  # closed: consecutive failures
    outcomes: tuple[bool, ...] = ()  # closed: the last ``window`` outcomes, True = ok
    probes: int = 0  # half_open: probes let through
    passed: int = 0  # half_open: probes answered ok
    probe_at: float | None = None  # half_open: when the last probe was let through

    @property
    def in_flight(self) -> int:
        """Probes let through and not answered yet (0 unless half-open)."""
        return self.probes - self.passed


def _closed_event(policy: BreakerPolicy, outcomes: tuple[bool, ...], failures: int) -> Event:
    """The event a failure is while closed: does it cross a threshold?"""
    if failures >= policy.failure_threshold:
        return Event.TOO_MANY_FAILURES
    seen = len(outcomes)
    if seen >= policy.window and outcomes.count(False) / seen >= policy.failure_rate:
        return Event.TOO_MANY_FAILURES
    return Event.FAILURE


def _move(state: BreakerState, now: float, event: Event) -> BreakerState:
    target = _TRANSITIONS[(state.name, event)]
    if target is Circuit.OPEN and event is not Event.LATE:
        opens = state.opens + 1
        return BreakerState(
            state.policy,
            Circuit.OPEN,
            opened_at=now,
            next_probe_at=now + state.policy.cooldown(opens),
            opens=opens,
        )
    if target is Circuit.CLOSED and state.name is not Circuit.CLOSED:
        return BreakerState(state.policy)
    if target is Circuit.HALF_OPEN and state.name is Circuit.OPEN:
        return replace(state, name=Circuit.HALF_OPEN, probes=0, passed=0, probe_at=None)
    if event is Event.PROBE:
        return replace(state, probes=state.probes + 1, probe_at=now)
    if state.name is Circuit.HALF_OPEN and event is Event.SUCCESS:
        return replace(state, passed=state.passed + 1)
    return state


def advance(state: BreakerState, now: float) -> BreakerState:
    """Apply what time alone changes: cool-down over, probes lost."""
    cooled = state.next_probe_at is not None and now >= state.next_probe_at
    if state.name is Circuit.OPEN and cooled:
        return _move(state, now, Event.COOLDOWN_OVER)
    if state.name is Circuit.HALF_OPEN and state.probe_at is not None:
        full = state.probes >= state.policy.half_open_probes and state.in_flight > 0
        if full and now >= state.probe_at + state.policy.cooldown_max_s:
            return _move(state, now, Event.PROBES_LOST)
    return state


def may_call(state: BreakerState, now: float) -> tuple[bool, BreakerState]:
    """Whether a call may go out at ``now``, and the state to store (a probe is counted)."""
    state = advance(state, now)
    if state.name is Circuit.CLOSED:
        return True, state
    if state.name is Circuit.HALF_OPEN and state.probes < state.policy.half_open_probes:
        return True, _move(state, now, Event.PROBE)
    return False, state


def record(state: BreakerState, now: float, ok: bool, *, trip: bool = False) -> BreakerState:
    """The state after the outcome of a call let through by :func:`may_call`."""
    if trip and ok:
        raise ValueError("trip=True records a failure; ok must be False")
    if state.name is Circuit.OPEN or (state.name is Circuit.HALF_OPEN and state.in_flight <= 0):
        return _move(state, now, Event.LATE)
    if trip:
        return _move(state, now, Event.TRIP)
    if state.name is Circuit.HALF_OPEN:
        if not ok:
            return _move(state, now, Event.FAILURE)
        if state.passed + 1 >= state.policy.half_open_probes:
            return _move(state, now, Event.PROBES_PASSED)
        return _move(state, now, Event.SUCCESS)
    outcomes = (*state.outcomes, ok)[-state.policy.window :]
    failures = 0 if ok else state.failures + 1
    event = Event.SUCCESS if ok else _closed_event(state.policy, outcomes, failures)
    moved = _move(state, now, event)
    if moved.name is Circuit.CLOSED:
        return replace(moved, outcomes=outcomes, failures=failures)
    return moved


def opened_elsewhere(state: BreakerState, now: float, until: float,
                     opens: int) -> BreakerState:
    """Another node opened this number's circuit until ``until`` (after
    ``opens`` opens in a row): a closed circuit opens until the same moment;
    one open or probing already keeps its own course."""
    if state.name is not Circuit.CLOSED or until <= now:
        return state
    return BreakerState(state.policy, Circuit.OPEN, opened_at=now, next_probe_at=until,
                        opens=max(state.opens, opens))


def retry_after(state: BreakerState, now: float) -> float:
    """Seconds until the circuit goes half-open (0.0 when it is not open)."""
    if state.name is not Circuit.OPEN or state.next_probe_at is None:
        return 0.0
    return max(0.0, state.next_probe_at - now)
