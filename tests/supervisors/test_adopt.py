"""Adopting a new version of the tree's spec while it runs (live reconfiguration)."""

from __future__ import annotations

import threading
import time
from typing import Any

from supervisors import (
    Actor,
    Backoff,
    ChildSpec,
    MailboxSpec,
    Routing,
    Strategy,
    pool_spec,
    supervisor_spec,
)
from tests.supervisors.helpers import Events, Recorder, flags, recorder
from tests.waits import until_sync


def _tree_spec(events: Events, children: list[ChildSpec], **root_flags: object):
    return supervisor_spec("root", flags(**root_flags), [
        supervisor_spec("mid", flags(), children),
    ])


def test_children_are_added_and_removed_and_the_others_keep_running(start_tree, events) -> None:
    tree = start_tree(_tree_spec(events, [recorder("a", events), recorder("b", events)]))
    tree.tell("mid/b", "before")
    events.wait_for(lambda items: ("got", "b", "before") in items)

    problems = tree.adopt(_tree_spec(events, [recorder("a", events), recorder("c", events)]))

    assert problems == []
    snapshot = tree.snapshot().to_dict()
    paths = {node["path"] for node in _walk(snapshot)}
    assert {"mid/a", "mid/c"} <= paths and "mid/b" not in paths
    assert events.items.count(("start", "a")) == 1  # not restarted
    assert ("stop", "b") in events.items and ("start", "c") in events.items
    tree.tell("mid/c", "hello")
    events.wait_for(lambda items: ("got", "c", "hello") in items)


def test_a_removed_child_handles_what_was_queued_before_it_stops(start_tree, events) -> None:
    tree = start_tree(_tree_spec(events, [recorder("a", events), recorder("b", events)]))
    for n in range(200):
        tree.tell("mid/b", n)

    tree.adopt(_tree_spec(events, [recorder("a", events)]))

    got = [item[2] for item in events.items if item[:2] == ("got", "b")]
    assert got == list(range(200))


def test_new_flags_apply_at_once_and_mailbox_bounds_change_in_place(start_tree, events) -> None:
    tree = start_tree(_tree_spec(events, [recorder("a", events)]))
    bigger = recorder("a", events, mailbox=MailboxSpec(capacity=7))

    tree.adopt(_tree_spec(events, [bigger], max_restarts=42, strategy=Strategy.ONE_FOR_ALL))

    nodes = {node["path"]: node for node in _walk(tree.snapshot().to_dict())}
    assert nodes[""]["info"]["max_restarts"] == 42
    assert nodes[""]["info"]["strategy"] == "one_for_all"
    assert tree.registry.get("mid/a").mailbox.spec.capacity == 7
    assert events.items.count(("start", "a")) == 1


def test_a_child_restarts_from_its_adopted_spec(start_tree, events) -> None:
    tree = start_tree(_tree_spec(events, [recorder("a", events)]))
    renamed = ChildSpec("a", lambda: Recorder("a2", events), message_retries=0)
    tree.adopt(_tree_spec(events, [renamed]))
    assert ("start", "a2") not in events.items  # still the running incarnation

    tree.tell("mid/a", "crash")

    events.wait_for(lambda items: ("start", "a2") in items)


def test_a_pool_adopts_its_new_size_without_restarting_its_workers(start_tree, events) -> None:
    def spec(size: int) -> ChildSpec:
        return supervisor_spec("root", flags(), [
            pool_spec("pool", recorder("w", events), size, routing=Routing.ROUND_ROBIN,
                      flags=flags()),
        ])

    tree = start_tree(spec(2))
    tree.adopt(spec(5))
    events.wait_count(("start", "w"), 5)
    tree.adopt(spec(3))

    workers = [n for n in _walk(tree.snapshot().to_dict())
               if n["path"].startswith("pool/")]
    assert len(workers) <= 5  # the two removed ones stop once drained
    assert events.items.count(("start", "w")) == 5
    events.wait_count(("stop", "w"), 2)


def _walk(node: dict) -> list[dict]:
    out = [node]
    for child in node.get("children", []):
        out += _walk(child)
    return out


class _SlowStop(Actor):
    """Takes a second to stop: keeps its supervisor busy adopting."""

    def on_stop(self) -> None:
        time.sleep(1.0)

    def receive(self, message: Any) -> Any:
        return message


def test_adopting_never_waits_on_a_crashed_child_supervisor(start_tree, events) -> None:
    def spec(with_slow: bool) -> ChildSpec:
        children = [ChildSpec("slow", _SlowStop, shutdown_s=3.0)] if with_slow else []
        children += [supervisor_spec("sub", flags(), [recorder("g", events)], shutdown_s=6.0),
                     recorder("c", events)]
        return supervisor_spec("root", flags(), [supervisor_spec("mid", flags(), children)])

    tree = start_tree(spec(True))
    adopting = threading.Thread(target=tree.adopt, args=(spec(False),), kwargs={"timeout_s": 30})
    adopting.start()
    until_sync(lambda: tree.registry.find("mid/slow") is None
           or tree.registry.get("mid/slow").state == "stopped")  # mid is busy removing it
    for path in ("mid/sub", "mid/c"):  # crash the child supervisor, and a sibling
        tree.registry.inject_fault(path)
        tree.registry.tell(path, "x")
    crashed_at = time.monotonic()

    events.wait_for(lambda items: items.count(("start", "c")) >= 2, timeout=10)

    assert time.monotonic() - crashed_at < 2.0  # restarted at once, not after a timeout
    adopting.join(timeout=10)
    assert not adopting.is_alive()


def test_a_pool_adopted_while_restarting_comes_back_at_the_adopted_size(start_tree, events) -> None:
    def spec(size: int) -> ChildSpec:
        return supervisor_spec("root", flags(), [
            supervisor_spec("mid", flags(backoff=Backoff(min_s=0.5, max_s=0.5, jitter=0.0)), [
                pool_spec("pool", recorder("w", events), size, routing=Routing.ROUND_ROBIN,
                          flags=flags()),
            ]),
        ])

    def workers() -> list[str]:
        return sorted(n.path for n in tree.registry.nodes() if n.path.startswith("mid/pool/"))

    tree = start_tree(spec(2))
    tree.registry.inject_fault("mid/pool")
    tree.registry.tell_node("mid/pool", "boom")
    until_sync(lambda: tree.registry.get("mid/pool").state == "restarting")

    assert tree.adopt(spec(4)) == []  # answered once the pool runs again

    until_sync(lambda: workers() == ["mid/pool/0", "mid/pool/1", "mid/pool/2", "mid/pool/3"])
