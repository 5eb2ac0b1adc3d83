"""Monotonic merge of outbound delivery statuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors.core.status import (
    PENDING,
    DeliveryState,
    Status,
    StatusError,
    counts_as_read,
    merge,
    merge_all,
    parse,
)

SENT = DeliveryState(Status.SENT)
DELIVERED = DeliveryState(Status.DELIVERED)
READ = DeliveryState(Status.READ)
PLAYED = DeliveryState(Status.PLAYED)
FAILED = DeliveryState(Status.FAILED, StatusError(131026, "Message undeliverable"))


@pytest.mark.parametrize(
    ("current", "incoming", "expected", "changed"),
    [
        (PENDING, SENT, SENT, True),
        (SENT, DELIVERED, DELIVERED, True),
        (DELIVERED, READ, READ, True),
        (READ, DELIVERED, READ, False),  # never read -> delivered
        (DELIVERED, SENT, DELIVERED, False),  # a late sent is ignored
        (READ, SENT, READ, False),
        (SENT, SENT, SENT, False),  # Meta's duplicates
        (READ, PLAYED, PLAYED, True),
        (PLAYED, READ, PLAYED, False),
        (PENDING, DELIVERED, DELIVERED, True),  # a status before our send call returned
    ],
)
def test_merge_only_moves_forward(
    current: DeliveryState, incoming: DeliveryState, expected: DeliveryState, changed: bool
) -> None:
    assert merge(current, incoming) == (expected, changed)


def test_failed_after_sent_is_terminal_and_keeps_its_error() -> None:
    state, changed = merge(SENT, FAILED)
    assert changed and state.status is Status.FAILED
    assert state.error == StatusError(131026, "Message undeliverable")
    assert merge(state, SENT) == (state, False)
    assert merge(state, PENDING) == (state, False)


def test_failed_after_delivered_or_read_is_ignored_because_meta_never_sends_it() -> None:
    assert merge(DELIVERED, FAILED) == (DELIVERED, False)
    assert merge(READ, FAILED) == (READ, False)


def test_a_delivery_receipt_outranks_an_earlier_failed_so_every_order_agrees() -> None:
    assert merge(FAILED, DELIVERED) == (DELIVERED, True)


def test_two_failures_resolve_independently_of_arrival_order() -> None:
    bare = DeliveryState(Status.FAILED)
    other = DeliveryState(Status.FAILED, StatusError(131049, "Ecosystem engagement"))
    assert merge(bare, FAILED) == (FAILED, True)  # an error beats none
    assert merge(FAILED, bare) == (FAILED, False)
    assert merge(FAILED, other)[0] == merge(other, FAILED)[0] == FAILED  # smaller code


def test_only_a_failed_state_may_carry_an_error() -> None:
    with pytest.raises(ValueError, match="only a failed"):
        DeliveryState(Status.SENT, StatusError(1))


def test_played_counts_as_read_but_delivered_never_does() -> None:
    assert counts_as_read(Status.READ) and counts_as_read(Status.PLAYED)
    assert not counts_as_read(Status.DELIVERED)


def test_parse_knows_metas_names_and_returns_none_for_new_ones() -> None:
    assert parse("delivered") is Status.DELIVERED
    assert parse(" READ ") is Status.READ
    assert parse("played") is Status.PLAYED
    assert parse("deleted") is None


_errors = st.builds(
    StatusError,
    code=st.sampled_from([131026, 131049, 131050, 131000]),
    title=st.sampled_from(["", "a", "b"]),
)
_states = st.one_of(
    st.sampled_from([PENDING, SENT, DELIVERED, READ, PLAYED]),
    st.builds(DeliveryState, st.just(Status.FAILED), st.none() | _errors),
)


@given(statuses=st.lists(_states, max_size=8), data=st.data())
def test_any_permutation_of_the_same_statuses_converges_to_the_same_state(
    statuses: list[DeliveryState], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(statuses))
    assert merge_all(PENDING, statuses) == merge_all(PENDING, shuffled)


@given(a=_states, b=_states, c=_states)
def test_merge_is_a_join_commutative_associative_idempotent(
    a: DeliveryState, b: DeliveryState, c: DeliveryState
) -> None:
    def join(x: DeliveryState, y: DeliveryState) -> DeliveryState:
        return merge(x, y)[0]

    assert join(a, b) == join(b, a)
    assert join(join(a, b), c) == join(a, join(b, c))
    assert join(a, a) == a
    assert merge(join(a, b), a) == (join(a, b), False)  # never goes backwards
