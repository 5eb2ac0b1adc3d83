"""Bounded mailboxes, overflow policies, names resolved per send."""

from __future__ import annotations

import threading
import time
from typing import Any

import pykka
import pytest

from supervisors import (
    ChildSpec,
    MailboxFull,
    MailboxSpec,
    NotRegistered,
    Overflow,
    Restart,
    supervisor_spec,
)
from tests.supervisors.helpers import Events, Recorder, flags


class Gated(Recorder):
    """Blocks on ``gate`` when told ``wait``."""

    gate: threading.Event

    def receive(self, message: Any) -> Any:
        if message == "wait":
            self.events.add(("waiting", self.name))
            self.gate.wait(5)
            return None
        return super().receive(message)


def _gated(events: Events, gate: threading.Event, mailbox: MailboxSpec, **extra: Any) -> ChildSpec:
    def build() -> Gated:
        actor = Gated("a", events)
        actor.gate = gate
        return actor

    return ChildSpec("a", build, mailbox=mailbox, message_retries=0, **extra)


def test_a_full_mailbox_with_refuse_policy_raises_to_the_sender(start_tree, events) -> None:
    gate = threading.Event()
    spec = _gated(events, gate, MailboxSpec(capacity=2, overflow=Overflow.REFUSE))
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    tree.tell("a", "wait")
    events.wait_for(lambda items: ("waiting", "a") in items)
    tree.tell("a", 1)
    tree.tell("a", 2)
    with pytest.raises(MailboxFull):
        tree.tell("a", 3)
    gate.set()
    events.wait_for(lambda items: ("got", "a", 2) in items)
    assert [i[2] for i in events.items if i[0] == "got"] == [1, 2]


def test_a_full_mailbox_with_block_policy_waits_then_gives_up(start_tree, events) -> None:
    gate = threading.Event()
    spec = _gated(events, gate, MailboxSpec(capacity=1, overflow=Overflow.BLOCK, block_timeout_s=0.1))
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    tree.tell("a", "wait")
    events.wait_for(lambda items: ("waiting", "a") in items)
    tree.tell("a", 1)
    started = time.monotonic()
    with pytest.raises(MailboxFull):
        tree.tell("a", 2)
    assert time.monotonic() - started >= 0.1
    gate.set()
    events.wait_for(lambda items: ("got", "a", 1) in items)


def test_a_blocked_sender_proceeds_when_room_appears(start_tree, events) -> None:
    gate = threading.Event()
    spec = _gated(events, gate, MailboxSpec(capacity=1, overflow=Overflow.BLOCK, block_timeout_s=5))
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    tree.tell("a", "wait")
    events.wait_for(lambda items: ("waiting", "a") in items)
    tree.tell("a", 1)
    threading.Timer(0.05, gate.set).start()
    tree.tell("a", 2)  # blocks until the actor takes 1
    events.wait_for(lambda items: ("got", "a", 2) in items)


def test_sending_to_an_unknown_name_fails_loudly(start_tree, events) -> None:
    tree = start_tree(supervisor_spec("root", flags(), []))
    with pytest.raises(NotRegistered, match="nobody/here"):
        tree.tell("nobody/here", "hello")


def test_removing_a_name_fails_queued_asks_and_dead_letters_queued_tells(start_tree, events) -> None:
    gate = threading.Event()
    dead: list[Any] = []
    spec = _gated(events, gate, MailboxSpec(capacity=10), restart=Restart.TEMPORARY)
    tree = start_tree(
        supervisor_spec("root", flags(), [spec]),
        dead_letter=lambda path, message, reason: dead.append(message),
    )
    tree.tell("a", "wait")
    events.wait_for(lambda items: ("waiting", "a") in items)
    tree.tell("a", "crash")
    tree.tell("a", "left behind")
    pending = tree.registry.ask_future("a", "question")
    gate.set()
    with pytest.raises(pykka.ActorDeadError):
        pending.get(timeout=5)
    assert dead == ["crash", "left behind"]  # the crashing tell, then what was queued


def test_mailbox_capacity_is_retuned_when_a_spec_changes(start_tree, events) -> None:
    tree = start_tree(supervisor_spec("root", flags(), []))
    node = tree.registry.ensure("x", "worker", MailboxSpec(capacity=1))
    mailbox = node.mailbox
    again = tree.registry.ensure("x", "worker", MailboxSpec(capacity=5))
    assert again.mailbox is mailbox and mailbox.spec.capacity == 5


def test_an_unbounded_tell_passes_a_full_mailbox_that_refuses_others(start_tree, events) -> None:
    gate = threading.Event()
    spec = _gated(events, gate, MailboxSpec(capacity=1, overflow=Overflow.REFUSE))
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    tree.tell("a", "wait")
    events.wait_for(lambda items: ("waiting", "a") in items)
    tree.tell("a", 1)
    with pytest.raises(MailboxFull):
        tree.tell("a", 2)
    tree.registry.tell("a", "ack", bounded=False)  # an acknowledgement never waits
    gate.set()
    events.wait_for(lambda items: ("got", "a", "ack") in items)
    assert [i[2] for i in events.items if i[0] == "got"] == [1, "ack"]


class SelfTeller(Recorder):
    """On ``loop``, sends itself ``n`` messages although its mailbox holds one."""

    def receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "loop":
            for i in range(message[1]):
                self.context.tell_self(("step", i))
            return None
        return super().receive(message)


def test_an_actor_never_waits_for_room_in_its_own_mailbox(start_tree, events) -> None:
    spec = ChildSpec("a", lambda: SelfTeller("a", events), message_retries=0,
                     mailbox=MailboxSpec(capacity=1, overflow=Overflow.BLOCK, block_timeout_s=0.2))
    tree = start_tree(supervisor_spec("root", flags(), [spec]))
    tree.tell("a", ("loop", 5))
    events.wait_for(lambda items: ("got", "a", ("step", 4)) in items)
    assert ("failed", "a") not in events.items


def test_a_batch_to_a_hash_pool_reaches_each_worker_as_one_message_in_key_order(
    start_tree, events
) -> None:
    from supervisors import Routing, pool_spec
    from supervisors.routing import consistent_index

    class Batches(Recorder):
        def receive(self, message: Any) -> Any:
            self.events.add((self.context.path, tuple(message)))
            return None

    worker = ChildSpec("w", lambda: Batches("w", events), message_retries=0)
    tree = start_tree(supervisor_spec("root", flags(), [
        pool_spec("pool", worker, 3, routing=Routing.HASH, flags=flags())]))
    items = [(f"k{i % 7}", (f"k{i % 7}", i)) for i in range(40)]
    tree.registry.tell_batch("pool", items, tuple)
    def batches(items: list[Any]) -> list[tuple[str, tuple[Any, ...]]]:
        return [item for item in items if item[0].startswith("pool/")]

    events.wait_for(lambda items: sum(len(batch) for _, batch in batches(items)) == 40)
    got = batches(events.items)
    assert len(got) <= 3  # one message per worker
    for path, batch in got:
        keys = {key for key, _ in batch}
        assert all(f"pool/{consistent_index(key, 3)}" == path for key in keys)
        for key in keys:  # each key's items in the order given
            assert [i for k, i in batch if k == key] == [i for k, (_, i) in items if k == key]
