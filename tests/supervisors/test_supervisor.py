"""Strategies x restart types, intensity and escalation, on real threads."""

from __future__ import annotations

import threading

import pytest

from supervisors import Backoff, NotRegistered, Restart, Strategy, supervisor_spec
from supervisors.control import StartChild, StopChild, WhichChildren
from supervisors.errors import Escalation
from tests.supervisors.helpers import Events, flags, recorder


def _three(events: Events, restart: Restart) -> list:
    return [recorder(name, events, restart) for name in ("a", "b", "c")]


def _after(items: list, marker: tuple) -> list:
    return items[items.index(marker) + 1 :]


@pytest.mark.parametrize("restart", [Restart.PERMANENT, Restart.TRANSIENT])
def test_one_for_one_restarts_only_the_crashed_child(start_tree, events, restart) -> None:
    tree = start_tree(supervisor_spec("root", flags(), _three(events, restart)))
    tree.tell("b", "crash")
    events.wait_count(("start", "b"), 2)
    assert tree.ask("b", "ping", timeout=2) == "ping"
    after = _after(events.items, ("failed", "b"))
    assert after == [("start", "b"), ("got", "b", "ping")]


@pytest.mark.parametrize("restart", [Restart.PERMANENT, Restart.TRANSIENT])
def test_one_for_all_stops_siblings_in_reverse_then_starts_all_in_order(
    start_tree, events, restart
) -> None:
    root = supervisor_spec("root", flags(strategy=Strategy.ONE_FOR_ALL), _three(events, restart))
    tree = start_tree(root)
    tree.tell("b", "crash")
    events.wait_count(("start", "c"), 2)
    after = _after(events.items, ("failed", "b"))
    assert after == [("stop", "c"), ("stop", "a"), ("start", "a"), ("start", "b"), ("start", "c")]


@pytest.mark.parametrize("restart", [Restart.PERMANENT, Restart.TRANSIENT])
def test_rest_for_one_restarts_the_crashed_child_and_later_siblings(
    start_tree, events, restart
) -> None:
    root = supervisor_spec("root", flags(strategy=Strategy.REST_FOR_ONE), _three(events, restart))
    tree = start_tree(root)
    tree.tell("b", "crash")
    events.wait_count(("start", "c"), 2)
    after = _after(events.items, ("failed", "b"))
    assert after == [("stop", "c"), ("start", "b"), ("start", "c")]
    assert events.items.count(("start", "a")) == 1


@pytest.mark.parametrize("strategy", list(Strategy))
def test_temporary_child_is_never_restarted_and_siblings_are_untouched(
    start_tree, events, strategy
) -> None:
    root = supervisor_spec("root", flags(strategy=strategy), _three(events, Restart.TEMPORARY))
    tree = start_tree(root)
    tree.tell("b", "crash")
    children = _wait_children(tree, lambda ids: "b" not in ids)
    assert children == ["a", "c"]
    assert events.items.count(("start", "b")) == 1
    assert ("stop", "a") not in events.items and ("stop", "c") not in events.items
    with pytest.raises(NotRegistered):
        tree.tell("b", "ping")


@pytest.mark.parametrize(
    ("restart", "restarted"),
    [(Restart.PERMANENT, True), (Restart.TRANSIENT, False), (Restart.TEMPORARY, False)],
)
def test_normal_exit_restarts_only_permanent_children(
    start_tree, events, restart, restarted
) -> None:
    tree = start_tree(supervisor_spec("root", flags(), [recorder("a", events, restart)]))
    tree.tell("a", "exit")
    if restarted:
        events.wait_count(("start", "a"), 2)
        assert tree.ask("a", "ping", timeout=2) == "ping"
    else:
        _wait_children(tree, lambda ids: "a" not in ids)
        assert events.items == [("start", "a"), ("stop", "a")]


# A normal exit of "b" among a, b, c (siblings permanent): after b's own
# ("stop", "b"), what its supervisor does under each strategy when b is
# permanent. As in OTP, a permanent child is restarted whatever its exit
# reason, and its siblings go with it exactly as after a crash.
NORMAL_EXIT_OF_PERMANENT_B = {
    Strategy.ONE_FOR_ONE: [("start", "b")],
    Strategy.ONE_FOR_ALL: [("stop", "c"), ("stop", "a"), ("start", "a"), ("start", "b"),
                           ("start", "c")],
    Strategy.REST_FOR_ONE: [("stop", "c"), ("start", "b"), ("start", "c")],
}


def _b_among_permanent_siblings(events: Events, restart: Restart) -> list:
    return [recorder("a", events), recorder("b", events, restart), recorder("c", events)]


@pytest.mark.parametrize("strategy", list(Strategy))
def test_normal_exit_of_a_permanent_child_restarts_it_and_its_strategys_siblings(
    start_tree, events, strategy
) -> None:
    children = _b_among_permanent_siblings(events, Restart.PERMANENT)
    tree = start_tree(supervisor_spec("root", flags(strategy=strategy), children))
    tree.tell("b", "exit")
    expected = NORMAL_EXIT_OF_PERMANENT_B[strategy]
    events.wait_for(
        lambda items: ("stop", "b") in items and len(_after(items, ("stop", "b"))) >= len(expected)
    )
    assert tree.ask("b", "ping", timeout=2) == "ping"
    assert _after(events.items, ("stop", "b")) == [*expected, ("got", "b", "ping")]
    restarted = {event[1] for event in expected if event[0] == "start"}
    snapshot = {node.path: node.restarts_total for node in tree.snapshot().walk()}
    assert snapshot == {"": 0, **{name: int(name in restarted) for name in ("a", "b", "c")}}


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("restart", [Restart.TRANSIENT, Restart.TEMPORARY])
def test_normal_exit_of_a_transient_or_temporary_child_is_final_and_siblings_are_untouched(
    start_tree, events, strategy, restart
) -> None:
    children = _b_among_permanent_siblings(events, restart)
    tree = start_tree(supervisor_spec("root", flags(strategy=strategy), children))
    tree.tell("b", "exit")
    assert _wait_children(tree, lambda ids: "b" not in ids) == ["a", "c"]
    assert tree.ask("a", "ping", timeout=2) == "ping"
    assert tree.ask("c", "ping", timeout=2) == "ping"
    assert events.items == [
        ("start", "a"), ("start", "b"), ("start", "c"), ("stop", "b"),
        ("got", "a", "ping"), ("got", "c", "ping"),
    ]
    assert all(node.restarts_total == 0 for node in tree.snapshot().walk())
    with pytest.raises(NotRegistered):
        tree.tell("b", "ping")


def test_a_normal_exit_that_restarts_counts_towards_the_intensity(events) -> None:
    from supervisors import Tree

    gave_up = threading.Event()
    root = supervisor_spec("root", flags(max_restarts=0), [recorder("a", events)])
    tree = Tree(root, on_give_up=lambda reason: gave_up.set()).start()
    try:
        tree.tell("a", "exit")
        assert gave_up.wait(5)
        assert "more than 0 restarts" in str(tree.give_up_reason)
    finally:
        tree.stop()


@pytest.mark.parametrize("strategy", [Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE])
def test_a_temporary_sibling_stopped_by_a_restart_is_not_started_again(
    start_tree, events, strategy
) -> None:
    children = [recorder("a", events), recorder("b", events),
                recorder("c", events, Restart.TEMPORARY)]
    tree = start_tree(supervisor_spec("root", flags(strategy=strategy), children))
    tree.tell("b", "exit")
    events.wait_count(("start", "b"), 2)
    assert ("stop", "c") in events.items
    # The restart runs in one handler of the root: answered after it.
    children = tree.registry.ask_node("", WhichChildren(), timeout=2)
    assert [child_id for child_id, _ in children] == ["a", "b"]


def test_crashes_beyond_intensity_escalate_and_the_root_gives_up(events) -> None:
    from supervisors import Tree

    gave_up = threading.Event()
    reasons: list[BaseException | None] = []

    def on_give_up(reason: BaseException | None) -> None:
        reasons.append(reason)
        gave_up.set()

    clock = FakeClock()
    root = supervisor_spec("root", flags(max_restarts=2, period_s=10.0), [recorder("a", events)])
    tree = Tree(root, clock=clock, on_give_up=on_give_up).start()
    try:
        for crash in range(3):
            tree.tell("a", "crash")
            if crash < 2:
                events.wait_count(("start", "a"), crash + 2)
        assert gave_up.wait(5)
        assert isinstance(reasons[0], Escalation)
        assert "more than 2 restarts within 10.0s" in str(reasons[0])
        assert tree.gave_up.is_set()
    finally:
        tree.stop()


def test_the_same_crashes_spread_over_time_do_not_escalate(start_tree, events) -> None:
    clock = FakeClock()
    root = supervisor_spec("root", flags(max_restarts=2, period_s=10.0), [recorder("a", events)])
    tree = start_tree(root, clock=clock)
    for crash in range(6):
        tree.tell("a", "crash")
        events.wait_count(("start", "a"), crash + 2)
        clock.now += 11.0
    assert not tree.gave_up.is_set()
    node = tree.snapshot().children[0]
    assert node.restarts_total == 6 and node.restarts_in_period == 0


def test_a_child_supervisor_that_gives_up_is_restarted_by_its_parent(start_tree, events) -> None:
    inner = supervisor_spec("inner", flags(max_restarts=1), [recorder("w", events)])
    tree = start_tree(supervisor_spec("root", flags(), [inner, recorder("other", events)]))
    tree.tell("inner/w", "crash")
    events.wait_count(("start", "w"), 2)
    tree.tell("inner/w", "crash")  # second restart within the period: inner escalates
    events.wait_count(("start", "w"), 3)
    assert tree.ask("inner/w", "ping", timeout=2) == "ping"
    snapshot = {node.path: node for node in tree.snapshot().walk()}
    assert snapshot["inner"].restarts_total == 1
    assert snapshot["other"].restarts_total == 0
    assert events.items.count(("start", "other")) == 1
    assert not tree.gave_up.is_set()


def test_a_failed_restart_is_retried_by_the_supervisor_until_it_succeeds(start_tree, events) -> None:
    from supervisors import ChildSpec
    from tests.supervisors.helpers import Recorder

    starts = iter(range(100))

    class Flaky(Recorder):
        def on_start(self) -> None:
            attempt = next(starts)
            if attempt in (1, 2):  # the first two restarts fail in on_start
                raise OSError(f"start attempt {attempt} failed")
            super().on_start()

    backoff = Backoff(min_s=0.001, max_s=0.01, jitter=0.0)
    spec = ChildSpec("a", lambda: Flaky("a", events), message_retries=0)
    tree = start_tree(supervisor_spec("root", flags(backoff=backoff), [spec]))
    tree.tell("a", "crash")
    tree.tell("a", "queued while restarting")
    events.wait_for(lambda items: ("got", "a", "queued while restarting") in items)
    assert tree.snapshot().children[0].restarts_total == 3  # the crash and two failed starts


def test_children_start_in_order_and_stop_in_reverse_order(events) -> None:
    from supervisors import Tree

    children = [recorder(name, events) for name in ("a", "b", "c")]
    tree = Tree(supervisor_spec("root", flags(), children)).start()
    tree.stop()
    assert events.items == [
        ("start", "a"), ("start", "b"), ("start", "c"),
        ("stop", "c"), ("stop", "b"), ("stop", "a"),
    ]


def test_children_can_be_added_and_removed_while_running(start_tree, events) -> None:
    tree = start_tree(supervisor_spec("root", flags(), [recorder("a", events)]))
    assert tree.registry.ask_node("", StartChild(recorder("b", events)), timeout=2) == "b"
    assert tree.ask("b", "hello", timeout=2) == "hello"
    tree.registry.ask_node("", StopChild("b"), timeout=2)
    assert tree.registry.ask_node("", WhichChildren(), timeout=2) == [("a", "running")]
    with pytest.raises(NotRegistered):
        tree.tell("b", "hello")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _wait_children(tree, predicate, timeout: float = 5.0) -> list[str]:
    """Ask the root for its children until ``predicate`` holds or the
    deadline passes (the exit report reaches the root asynchronously)."""
    import time

    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while True:
        ids = [child_id for child_id, _ in tree.registry.ask_node("", WhichChildren(), timeout=2)]
        if predicate(ids) or time.monotonic() > deadline:
            break
        tick.wait(0.005)
    assert predicate(ids), f"children never matched; last: {ids}"
    return ids


def test_retuned_flags_apply_to_the_next_crash_without_restarting_anyone(events) -> None:
    from supervisors import SupervisorFlags, Tree
    from supervisors.control import Retune

    gave_up = threading.Event()
    root = supervisor_spec("root", flags(max_restarts=10), [recorder("a", events)])
    tree = Tree(root, on_give_up=lambda reason: gave_up.set()).start()
    try:
        tree.registry.ask_node("", Retune(SupervisorFlags(max_restarts=0)), timeout=2)
        assert tree.snapshot().info["max_restarts"] == 0
        assert events.items == [("start", "a")]
        tree.tell("a", "crash")
        assert gave_up.wait(5)
    finally:
        tree.stop()
