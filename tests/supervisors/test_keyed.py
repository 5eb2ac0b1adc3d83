"""Keyed children: started on first message, passivated when idle, back on demand."""

from __future__ import annotations

import random
import threading
from typing import Any

from supervisors import keyed_spec, supervisor_spec
from supervisors.actor import Actor
from tests.supervisors.helpers import Events, flags


class PerKey(Actor):
    def __init__(self, key: str, events: Events) -> None:
        self.key = key
        self.events = events

    def on_start(self) -> None:
        self.events.add(("start", self.key))

    def on_stop(self) -> None:
        self.events.add(("stop", self.key))

    def receive(self, message: Any) -> Any:
        self.events.add(("got", self.key, message))
        return message


def test_a_key_starts_on_its_first_message_and_passivates_when_idle(start_tree, events) -> None:
    spec = keyed_spec("clients", lambda key: PerKey(key, events), idle_s=0.05)
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    assert tree.registry.find("clients/alice") is None
    tree.tell("clients", "hello", key="alice")
    events.wait_for(lambda items: ("stop", "alice") in items)
    assert events.items[:2] == [("start", "alice"), ("got", "alice", "hello")]
    _wait_until(lambda: tree.registry.find("clients/alice") is None)
    assert tree.ask("clients", "again", key="alice", timeout=2) == "again"
    assert events.items.count(("start", "alice")) == 2


def test_keys_with_slashes_are_children_not_deeper_paths(start_tree, events) -> None:
    spec = keyed_spec("clients", lambda key: PerKey(key, events), idle_s=60)
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    assert tree.ask("clients", "x", key="firm-a/6281", timeout=2) == "x"
    assert tree.registry.find("clients/firm-a%2F6281") is not None


def test_no_message_is_lost_or_reordered_across_passivations(start_tree, events) -> None:
    """Messages arrive around the idle time, so passivation races with sends."""
    spec = keyed_spec("clients", lambda key: PerKey(key, events), idle_s=0.002)
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    rng = random.Random(7)
    keys = [f"k{i}" for i in range(10)]
    sent: dict[str, list[int]] = {key: [] for key in keys}
    pause = threading.Event()
    for seq in range(1_500):
        key = rng.choice(keys)
        sent[key].append(seq)
        tree.tell("clients", seq, key=key)
        if seq % 50 == 0:
            pause.wait(0.004)  # let some keys go idle and passivate
    events.wait_for(lambda items: sum(1 for i in items if i[0] == "got") == 1_500, timeout=20)
    got: dict[str, list[int]] = {key: [] for key in keys}
    for item in events.items:
        if item[0] == "got":
            got[item[1]].append(item[2])
    assert got == sent
    assert sum(1 for i in events.items if i[0] == "stop") > 0  # passivation did happen


def _wait_until(predicate, attempts: int = 500) -> None:
    flag = threading.Event()
    for _ in range(attempts):
        if predicate():
            return
        flag.wait(0.01)
    raise AssertionError("condition never held")


def test_a_batch_reaches_each_key_as_one_message_in_the_order_given(start_tree, events) -> None:
    spec = keyed_spec("clients", lambda key: PerKey(key, events), idle_s=60)
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    tree.registry.tell_batch("clients", [("alice", 1), ("bob", 2), ("alice", 3)], tuple)
    events.wait_for(lambda items: {("got", "alice", (1, 3)), ("got", "bob", (2,))} <= set(items))
    assert [item for item in events.items if item[0] == "got"].count(("got", "alice", (1, 3))) == 1
