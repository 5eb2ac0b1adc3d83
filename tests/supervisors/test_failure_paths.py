"""Every pykka failure path becomes one supervised, counted exit."""

from __future__ import annotations

import threading
from typing import Any

import pykka
import pytest

from supervisors import ChildSpec, StartFailed, Tree, supervisor_spec
from supervisors.errors import ActorCrashed
from tests.supervisors.helpers import Events, Recorder, flags, recorder


def _restarts(tree: Tree, path: str) -> int:
    return next(n for n in tree.snapshot().walk() if n.path == path).restarts_total


def test_crash_in_tell_restarts_and_messages_queued_behind_it_survive(start_tree, events) -> None:
    gate = threading.Event()

    class Slow(Recorder):
        def receive(self, message: Any) -> Any:
            if message == "wait":
                gate.wait(5)
                return None
            return super().receive(message)

    spec = ChildSpec("a", lambda: Slow("a", events), message_retries=0)
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    tree.tell("a", "wait")  # hold the actor so the next messages queue up
    for message in ("crash", "m1", "m2", "m3"):
        tree.tell("a", message)
    gate.set()
    events.wait_for(lambda items: ("got", "a", "m3") in items)
    got = [item[2] for item in events.items if item[0] == "got"]
    assert got == ["m1", "m2", "m3"]
    assert _restarts(tree, "a") == 1


def test_crash_in_ask_answers_the_caller_and_is_still_supervised(start_tree, events) -> None:
    tree = start_tree(supervisor_spec("root", flags(), [recorder("a", events)]))
    with pytest.raises(RuntimeError, match="asked to crash"):
        tree.ask("a", "crash", timeout=2)
    events.wait_count(("start", "a"), 2)
    assert ("failed", "a") in events.items
    assert _restarts(tree, "a") == 1
    assert tree.ask("a", "ping", timeout=2) == "ping"


def test_crash_in_on_start_at_first_start_fails_the_tree_start(events) -> None:
    class Broken(Recorder):
        def on_start(self) -> None:
            raise OSError("cannot open its resource")

    spec = ChildSpec("a", lambda: Broken("a", events))
    tree = Tree(supervisor_spec("root", flags(), [recorder("first", events), spec]))
    with pytest.raises(StartFailed, match="cannot open its resource"):
        tree.start()
    assert events.items == [("start", "first"), ("stop", "first")]


def test_base_exception_in_a_child_does_not_stop_unrelated_actors(start_tree, events) -> None:
    tree = start_tree(
        supervisor_spec("root", flags(), [recorder("a", events), recorder("b", events)])
    )
    tree.tell("a", "base")  # SystemExit would make pykka stop every actor
    events.wait_count(("start", "a"), 2)
    assert tree.ask("b", "still here", timeout=2) == "still here"
    assert tree.ask("a", "back", timeout=2) == "back"
    assert _restarts(tree, "b") == 0
    assert pykka.ActorRegistry.get_all()  # pykka's stop_all did not run


def test_base_exception_in_an_ask_reaches_the_caller_as_actor_crashed(start_tree, events) -> None:
    tree = start_tree(supervisor_spec("root", flags(), [recorder("a", events)]))
    with pytest.raises(ActorCrashed, match="SystemExit"):
        tree.ask("a", "base", timeout=2)
    assert tree.ask("a", "ping", timeout=2) == "ping"


def test_a_crashing_message_is_retried_then_handled(start_tree, events) -> None:
    attempts = iter(range(10))

    class FailsOnce(Recorder):
        def receive(self, message: Any) -> Any:
            if message == "flaky" and next(attempts) == 0:
                raise ConnectionError("first attempt fails")
            return super().receive(message)

    spec = ChildSpec("a", lambda: FailsOnce("a", events), message_retries=1)
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    tree.tell("a", "flaky")
    tree.tell("a", "next")
    events.wait_for(lambda items: ("got", "a", "next") in items)
    got = [item[2] for item in events.items if item[0] == "got"]
    assert got == ["flaky", "next"]
    assert tree.registry.dead_letters == 0


def test_a_poison_message_is_dead_lettered_after_its_retries(start_tree, events) -> None:
    dead: list[tuple[str, Any, str]] = []
    spec = recorder("a", events, message_retries=2)
    tree = start_tree(
        supervisor_spec("root", flags(), [spec]),
        dead_letter=lambda path, message, reason: dead.append((path, message, reason)),
    )
    tree.tell("a", "crash")
    tree.tell("a", "after the poison")
    events.wait_for(lambda items: ("got", "a", "after the poison") in items)
    assert dead == [("a", "crash", "handler crashed 3 times: RuntimeError('a asked to crash')")]
    assert _restarts(tree, "a") == 3


def test_a_message_sent_while_the_actor_restarts_waits_for_the_new_one(
    start_tree, events: Events
) -> None:
    from supervisors import Backoff

    slow_restart = flags(backoff=Backoff(min_s=0.2, max_s=0.2, jitter=0.0))
    tree = start_tree(supervisor_spec("root", slow_restart, [recorder("a", events)]))
    tree.tell("a", "crash")
    events.wait_for(lambda items: ("failed", "a") in items)
    assert tree.ask("a", "during restart", timeout=5) == "during restart"
    assert events.items.index(("start", "a"), 1) < events.items.index(("got", "a", "during restart"))


def test_a_reply_slot_that_raises_does_not_kill_the_actor(start_tree, events) -> None:
    from supervisors.pykka_seam import Envelope

    class Broken(pykka.ThreadingFuture):  # type: ignore[type-arg]
        def set(self, value: Any = None) -> None:
            raise RuntimeError("the asker is gone")

    tree = start_tree(supervisor_spec("root", flags(), [recorder("a", events)]))
    tree.registry.send("a", Envelope("first", reply_to=Broken()))
    assert tree.ask("a", "second", timeout=2) == "second"
    assert _restarts(tree, "a") == 0


def test_an_injected_fault_crashes_the_next_message_once_and_the_retry_is_handled(
    start_tree, events
) -> None:
    from supervisors import NotRegistered, supervisor_spec
    from tests.supervisors.helpers import flags, recorder

    tree = start_tree(supervisor_spec("root", flags(), [recorder("a", events, message_retries=1)]))
    tree.registry.inject_fault("a")
    tree.tell("a", "first")
    events.wait_for(lambda items: ("got", "a", "first") in items)
    assert events.items.count(("failed", "a")) == 1  # crashed once, in place of "first"
    assert events.items.count(("start", "a")) == 2  # restarted, then "first" handled
    tree.tell("a", "second")
    events.wait_for(lambda items: ("got", "a", "second") in items)
    assert events.items.count(("failed", "a")) == 1  # armed for one message only
    snapshot = {node.path: node for node in tree.snapshot().walk()}
    assert snapshot["a"].restarts_total == 1
    with pytest.raises(NotRegistered):
        tree.registry.inject_fault("no/such/actor")
