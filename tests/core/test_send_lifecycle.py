"""The send lifecycle: its moves, and what follows each failed call."""

from __future__ import annotations

import pytest

from lawhub_actors.core.send_errors import SendClass
from lawhub_actors.core.send_lifecycle import (
    FINISHED,
    MOVES,
    UNFINISHED,
    DeadLetter,
    Failure,
    RetryPolicy,
    SendAgain,
    SendState,
    after_failure,
    grace_s,
    may_move,
)

POLICY = RetryPolicy(max_attempts=6, base_s=1.0, max_s=60.0, settle_grace_s=10.0)


def _after(status: int | None, code: int | None, attempts: int = 1,
           previous_code: int | None = None, timed_out: bool = False):
    return after_failure(Failure(status, code, timed_out), attempts=attempts,
                         previous_code=previous_code, policy=POLICY, uniform=lambda: 0.5)


def test_every_state_is_either_finished_or_taken_up_again_at_start() -> None:
    assert set(FINISHED) | set(UNFINISHED) == set(SendState)
    assert not set(FINISHED) & set(UNFINISHED)


def test_nothing_leaves_discarded_and_sent_only_stays_sent() -> None:
    assert MOVES[SendState.DISCARDED] == frozenset()
    assert MOVES[SendState.SENT] == {SendState.SENT}


def test_metas_status_may_settle_a_message_as_sent_from_any_state_but_discarded() -> None:
    assert {old for old in SendState if may_move(old, SendState.SENT)} == (
        set(SendState) - {SendState.DISCARDED})


def test_only_a_dead_letter_is_replayed_or_discarded() -> None:
    assert {old for old in SendState if may_move(old, SendState.DISCARDED)} == {SendState.DEAD}
    assert may_move(SendState.DEAD, SendState.PENDING)
    assert not may_move(SendState.SENT, SendState.PENDING)
    assert not may_move(SendState.UNKNOWN, SendState.PENDING)  # it waits for its grace first


def test_a_retryable_answer_goes_back_to_pending_after_a_jittered_backoff() -> None:
    decision = _after(503, 131000, attempts=3)  # a 5xx with a known retryable code: unsure
    assert decision.then == SendAgain(SendState.UNKNOWN, grace_s(3, POLICY))
    decision = _after(400, 131000, attempts=3)
    assert decision.kind is SendClass.RETRY
    assert decision.then == SendAgain(SendState.PENDING, 0.5 * 4.0)  # uniform 0.5 of 1 s * 2**2
    assert not decision.number_works and not decision.trip


def test_metas_code_1_is_tried_again_once_only() -> None:
    first = _after(400, 1, attempts=1)
    assert isinstance(first.then, SendAgain)
    second = _after(400, 1, attempts=2, previous_code=1)
    assert second.then == DeadLetter("retries_exhausted")
    after_another_code = _after(400, 1, attempts=2, previous_code=131000)
    assert isinstance(after_another_code.then, SendAgain)


def test_other_retryable_codes_repeat_until_the_attempts_are_spent() -> None:
    assert isinstance(_after(400, 131000, attempts=5, previous_code=131000).then, SendAgain)
    assert _after(400, 131000, attempts=6).then == DeadLetter("retries_exhausted")


def test_the_pair_rate_holds_back_that_recipient_4_to_the_n_seconds_and_says_the_number_works(
) -> None:
    decision = _after(400, 131056, attempts=3)
    assert decision.then == SendAgain(SendState.PENDING, 16.0)
    assert decision.number_works and not decision.trip


@pytest.mark.parametrize(("code", "trip"), [(131026, False), (190, True), (131031, True)])
def test_a_terminal_answer_dead_letters_at_once_and_a_broken_token_trips_the_breaker(
        code: int, trip: bool) -> None:
    decision = _after(400, code, attempts=1)
    assert decision.then == DeadLetter("terminal")
    assert decision.trip is trip
    assert decision.number_works is not trip


def test_an_unsure_outcome_waits_for_a_status_at_least_the_grace_and_longer_as_attempts_grow(
) -> None:
    assert _after(None, None, attempts=1, timed_out=True).then == SendAgain(SendState.UNKNOWN,
                                                                             10.0)
    assert grace_s(6, POLICY) == 32.0
    assert grace_s(9, POLICY) == 60.0


def test_backoff_is_full_jitter_capped_and_the_pair_rate_wait_uncapped() -> None:
    top = lambda: 0.999999  # noqa: E731
    late = after_failure(Failure(400, 131000), attempts=4, previous_code=131000,
                         policy=RetryPolicy(30, 1.0, 60.0, 10.0), uniform=top)
    assert late.then == SendAgain(SendState.PENDING, pytest.approx(8.0, rel=1e-5))
    capped = after_failure(Failure(400, 131000), attempts=25, previous_code=131000,
                           policy=RetryPolicy(30, 1.0, 60.0, 10.0), uniform=top)
    assert capped.then == SendAgain(SendState.PENDING, pytest.approx(60.0, rel=1e-5))
    pair = after_failure(Failure(400, 131056), attempts=5, previous_code=131056,
                         policy=RetryPolicy(30, 1.0, 60.0, 10.0), uniform=top)
    assert pair.then == SendAgain(SendState.PENDING, 256.0)
