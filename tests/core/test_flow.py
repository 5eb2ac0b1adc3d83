"""The windows and the positions left behind (lawhub_actors.core.flow)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors.core.flow import LeftBehind, Limits, Unsettled, Window

A1, A2, B1 = ("firm-a", "1"), ("firm-a", "2"), ("firm-b", "1")


def _window(conversation: int = 2, tenant: int = 3, total: int = 4, size: int = 100) -> Window:
    return Window(Limits(conversation, tenant, total, size))


def test_a_conversation_has_no_room_once_its_own_window_is_full() -> None:
    window = _window()
    window.take(A1, 1)
    window.take(A1, 1)
    assert not window.has_room(A1)
    assert window.has_room(A2) and window.has_room(B1)


def test_a_tenant_full_of_updates_leaves_room_for_another_tenant() -> None:
    window = _window(conversation=3, tenant=3, total=10)
    for conversation in (A1, A2, A2):
        window.take(conversation, 1)
    assert not window.has_room(("firm-a", "3")) and not window.tenant_has_room("firm-a")
    assert window.has_room(B1) and window.tenant_has_room("firm-b")


def test_the_total_and_the_bytes_bound_everyone() -> None:
    window = _window(conversation=9, tenant=9, total=9, size=100)
    window.take(A1, 60)
    assert window.has_room(B1, 40) and not window.has_room(B1, 41)
    window.take(B1, 40)
    assert not window.open


def test_one_update_bigger_than_the_byte_budget_still_moves_alone() -> None:
    window = _window(size=100)
    assert window.has_room(A1, 10_000)
    window.take(A1, 10_000)
    assert not window.open and not window.has_room(B1, 1)
    window.give_back(A1, 10_000)
    assert window.open and window.count == 0 and window.bytes == 0


def test_giving_back_restores_the_room_taken() -> None:
    window = _window()
    window.take(A1, 5)
    window.take(A1, 5)
    window.give_back(A1, 5)
    assert window.has_room(A1) and window.of_tenant("firm-a") == 1


def test_the_oldest_position_left_behind_follows_what_is_handed_out() -> None:
    behind = LeftBehind()
    assert behind.oldest() is None
    behind.leave(A1, (10, 2))
    behind.leave(B1, (12, 0))
    behind.leave(A1, (15, 0))  # the rest of A1 stays behind after it
    assert behind.oldest() == (10, 2) and behind.count == 3
    assert behind.peek(A1, 5) == [(10, 2), (15, 0)]
    behind.handed(A1)
    assert behind.oldest() == (12, 0) and behind.next(A1) == (15, 0)
    behind.handed(B1)  # its last: no longer behind
    assert behind.oldest() == (15, 0)
    assert A1 in behind and B1 not in behind and len(behind) == 1
    assert behind.of_tenant("firm-a") == [A1] and behind.count_of_tenant("firm-b") == 0


def test_a_conversations_positions_must_come_in_journal_order() -> None:
    behind = LeftBehind()
    behind.leave(A1, (10, 2))
    with pytest.raises(ValueError, match="not after"):
        behind.leave(A1, (10, 1))


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 3), st.booleans()), max_size=300))
def test_the_oldest_is_always_the_minimum_of_the_first_positions(moves) -> None:
    behind = LeftBehind()
    current: dict[tuple[str, str], list[tuple[int, int]]] = {}
    seq = 0
    for who, step, hand in moves:
        conversation = ("t", str(who))
        if hand and current.get(conversation):
            behind.handed(conversation)
            current[conversation].pop(0)
            if not current[conversation]:
                del current[conversation]
        else:
            seq += step
            behind.leave(conversation, (seq, who))
            current.setdefault(conversation, []).append((seq, who))
        firsts = [positions[0] for positions in current.values()]
        assert behind.oldest() == (min(firsts) if firsts else None)
        assert behind.count == sum(map(len, current.values()))


def test_a_draining_backlog_is_not_a_stall_but_one_that_does_not_move_is() -> None:
    from lawhub_actors.core.flow import stall

    assert stall(lag=50_000, idle_s=0.5, stall_after_s=120) is None
    assert stall(lag=0, idle_s=900, stall_after_s=120) is None
    reason = stall(lag=7, idle_s=130, stall_after_s=120)
    assert reason is not None and reason.startswith("7 journal entries wait")


def test_the_oldest_unsettled_entry_is_the_oldest_with_any_update_still_out() -> None:
    unsettled = Unsettled()
    assert unsettled.oldest() is None
    for seq in (7, 5, 5, 9):
        unsettled.add(seq)
    assert unsettled.oldest() == 5
    unsettled.settle(5)
    assert unsettled.oldest() == 5  # one of its two updates is still out
    unsettled.settle(5)
    assert unsettled.oldest() == 7
    unsettled.add(5)  # an entry read again (its conversation came back)
    assert unsettled.oldest() == 5
    for seq in (5, 7, 9):
        unsettled.settle(seq)
    assert unsettled.oldest() is None
