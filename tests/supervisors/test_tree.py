"""The tree as operators and the host process see it."""

from __future__ import annotations

import threading

from supervisors import ChildSpec, Tree, keyed_spec, pool_spec, supervisor_spec
from supervisors.control import WhichChildren
from tests.supervisors.helpers import Events, Recorder, flags, recorder


def test_snapshot_shows_every_node_with_state_restarts_and_depth(start_tree, events) -> None:
    worker = ChildSpec("w", lambda: Recorder("w", events))
    inbound = supervisor_spec("inbound", flags(), [pool_spec("sessions", worker, 3)])
    tree = start_tree(supervisor_spec("root", flags(), [inbound, recorder("store", events)]))
    tree.tell("store", "crash")
    events.wait_count(("start", "store"), 2)
    tree.registry.ask_node("", WhichChildren(), timeout=2)  # queued after the restart's report
    tree_dict = tree.snapshot().to_dict()
    assert tree_dict["id"] == "root" and tree_dict["kind"] == "supervisor"
    by_path = {node.path: node for node in tree.snapshot().walk()}
    assert set(by_path) == {"", "inbound", "inbound/sessions", "store"} | {
        f"inbound/sessions/{i}" for i in range(3)
    }
    assert by_path["store"].restarts_total == 1
    assert by_path["store"].restarts_in_period == 1
    assert by_path["inbound/sessions"].info == {
        "strategy": "one_for_one", "max_restarts": 5, "period_s": 10.0, "routing": "hash", "size": 3,
    }
    assert by_path["store"].info == {}
    assert all(node.state == "running" for node in by_path.values())
    assert by_path["inbound/sessions/0"].mailbox_depth == 0


def test_no_thread_is_left_after_the_tree_stops(thread_baseline: int) -> None:
    events = Events()
    worker = ChildSpec("w", lambda: Recorder("w", events))
    keyed = keyed_spec("clients", lambda key: Recorder(key, events), idle_s=60)
    tenants = [
        supervisor_spec(f"tenant-{t}", flags(), [pool_spec("shards", worker, 4)]) for t in range(5)
    ]
    tree = Tree(supervisor_spec("root", flags(), [*tenants, keyed])).start()
    for key in ("a", "b", "c"):
        tree.ask("clients", "hi", key=key, timeout=2)
    tree.tell("tenant-1/shards", "crash", key="x")
    assert threading.active_count() > thread_baseline + 20
    tree.stop()
    assert threading.active_count() == thread_baseline, [t.name for t in threading.enumerate()]


def test_stop_is_idempotent_and_fails_later_sends(events) -> None:
    tree = Tree(supervisor_spec("root", flags(), [recorder("a", events)])).start()
    tree.stop()
    tree.stop()
    try:
        tree.tell("a", "late")
    except Exception as error:
        assert type(error).__name__ == "NotRegistered"
    else:
        raise AssertionError("a send after stop must fail loudly")
