"""Outbound messages in the store, on SQLite and on PostgreSQL: every change
of state follows the send lifecycle's table, and Meta's word settles a dead
letter."""

from __future__ import annotations

from typing import cast

import pytest

from lawhub_actors.actors.outbound_worker import Send, Sweep, take_up_unfinished
from lawhub_actors.adapters import outbound_store, store_reads
from lawhub_actors.adapters.leases import Ownership
from lawhub_actors.adapters.store import Store
from lawhub_actors.core.send_lifecycle import IllegalMove, SendState
from lawhub_actors.usecases import dead_letters
from supervisors import MailboxFull, Registry
from tests.adapters.conftest import KEYRING, Backend

NUMBER = "6281234500001"


@pytest.fixture
def store(backend: Backend):
    store = Store(backend.database(), KEYRING)
    yield store
    store.close()


def _pending(store: Store) -> str:
    return store.write(lambda tx: outbound_store.insert(
        tx, "firm-a", phone_number_id="106540352242922", recipient=NUMBER, client_ref=None,
        content={"type": "text", "text": "Jadwal sidang Anda besok"}, business_initiated=False,
    )).value


def _state(store: Store, message_id: str) -> SendState:
    message = store.read_tx(outbound_store.load, message_id)
    assert message is not None
    return message.state


def test_a_move_the_lifecycle_does_not_allow_is_refused_and_changes_nothing(store) -> None:
    message_id = _pending(store)
    with pytest.raises(IllegalMove, match="pending -> discarded"):
        store.write(lambda tx: outbound_store.set_state(tx, message_id, SendState.DISCARDED))
    with pytest.raises(IllegalMove, match="pending -> unknown"):
        store.write(lambda tx: outbound_store.set_state(tx, message_id, SendState.UNKNOWN))
    assert _state(store, message_id) is SendState.PENDING


def test_a_send_that_moves_counts_its_attempts_and_keeps_metas_last_code(store) -> None:
    message_id = _pending(store)
    store.write(lambda tx: outbound_store.set_state(tx, message_id, SendState.SENDING,
                                                    attempt=True))
    store.write(lambda tx: outbound_store.failed(tx, message_id, SendState.PENDING, 1))
    message = store.read_tx(outbound_store.load, message_id)
    assert message is not None
    assert (message.state, message.attempts, message.last_code) == (SendState.PENDING, 1, 1)


def test_a_dead_letter_that_meta_says_went_out_after_all_leaves_the_queue(store) -> None:
    message_id = _pending(store)
    message = store.read_tx(outbound_store.load, message_id)
    store.write(lambda tx: dead_letters.dead_letter(tx, message, "retries_exhausted",
                                                    {"code": 131000}))
    assert store.read(store_reads.count, "dlq") == 1
    store.write(lambda tx: outbound_store.mark_sent(tx, message, "wamid.SENT-AFTER-ALL"))
    assert _state(store, message_id) is SendState.SENT
    assert store.read(store_reads.count, "dlq") == 0


def test_a_discarded_message_is_never_sent_nor_replayed(store) -> None:
    message_id = _pending(store)
    message = store.read_tx(outbound_store.load, message_id)
    store.write(lambda tx: dead_letters.dead_letter(tx, message, "terminal", {"code": 131026}))
    store.write(lambda tx: dead_letters.discard(tx, message_id, "admin"))
    with pytest.raises(IllegalMove, match="discarded -> sent"):
        store.write(lambda tx: outbound_store.mark_sent(tx, message, "wamid.LATE"))
    with pytest.raises(dead_letters.NotDead):
        store.write(lambda tx: dead_letters.discard(tx, message_id, "admin"))
    assert _state(store, message_id) is SendState.DISCARDED


def test_what_a_restart_takes_up_again_is_every_unfinished_send_in_the_order_accepted(
        store) -> None:
    first, second, third = (_pending(store) for _ in range(3))
    store.write(lambda tx: outbound_store.set_state(tx, second, SendState.SENDING, attempt=True))
    store.write(lambda tx: outbound_store.set_state(tx, third, SendState.SENDING, attempt=True))
    store.write(lambda tx: outbound_store.mark_sent(
        tx, store.read_tx(outbound_store.load, third), "wamid.THIRD"))
    assert [row[0] for row in store.read_tx(outbound_store.unfinished)] == [first, second]
    assert [row[2] for row in store.read_tx(outbound_store.unfinished)] == [NUMBER, NUMBER]
    assert store.read(outbound_store.unfinished_by_number) == {("firm-a", "106540352242922"): 2}


def test_the_tier_counts_each_user_reached_by_a_business_initiated_message_once(store) -> None:
    def business(recipient: str) -> str:
        return store.write(lambda tx: outbound_store.insert(
            tx, "firm-a", phone_number_id="106540352242922", recipient=recipient,
            client_ref=None, content={"type": "template"}, business_initiated=True)).value

    business(NUMBER)
    business(NUMBER)
    business("6281234500002")
    ref = store.read_tx(lambda tx: tx.ref("firm-a", NUMBER))
    other = store.read_tx(lambda tx: tx.ref("firm-a", "6281234500099"))
    assert store.read_tx(outbound_store.tier_usage, "106540352242922", ref, 0.0) == (2, True)
    assert store.read_tx(outbound_store.tier_usage, "106540352242922", other, 0.0) == (2, False)


def test_a_callers_reference_finds_its_message_and_a_callback_only_its_own_tenants(
        store) -> None:
    message_id = store.write(lambda tx: outbound_store.insert(
        tx, "firm-a", phone_number_id="106540352242922", recipient=NUMBER, client_ref="ref-1",
        content={"type": "text", "text": "x"}, business_initiated=False)).value
    assert store.read_tx(outbound_store.find_by_client_ref, "firm-a", "ref-1") == message_id
    assert store.read_tx(outbound_store.find_by_client_ref, "firm-b", "ref-1") is None
    assert store.read_tx(outbound_store.outbound_of_callback, "firm-a", message_id) == message_id
    assert store.read_tx(outbound_store.outbound_of_callback, "firm-b", message_id) is None


def test_a_described_send_carries_its_history_and_a_dead_letter_its_error(store) -> None:
    message_id = _pending(store)
    message = store.read_tx(outbound_store.load, message_id)
    store.write(lambda tx: outbound_store.set_state(tx, message_id, SendState.SENDING,
                                                    attempt=True))
    store.write(lambda tx: outbound_store.mark_sent(tx, message, "wamid.D"))
    store.write(lambda tx: tx.insert_status("firm-a", "wamid.D", "delivered", 7,
                                            {"status": "delivered"}))
    described = store.read_tx(outbound_store.describe, "firm-a", message_id)
    assert described is not None
    assert (described["to"], described["wamid"], described["state"], described["attempts"]) == (
        NUMBER, "wamid.D", "sent", 1)
    assert [h["status"] for h in described["history"]] == ["accepted", "delivered"]
    assert store.read_tx(outbound_store.describe, "firm-b", message_id) is None

    dead = _pending(store)
    store.write(lambda tx: dead_letters.dead_letter(
        tx, store.read_tx(outbound_store.load, dead), "terminal", {"code": 131026}))
    (letter,) = store.read_tx(outbound_store.dead_letters)
    assert (letter["id"], letter["to"], letter["reason"], letter["error"]) == (
        dead, NUMBER, "terminal", {"code": 131026})


def test_a_recipients_earlier_unfinished_messages_are_found_oldest_first(store) -> None:
    first, second, third = (_pending(store) for _ in range(3))
    store.write(lambda tx: outbound_store.set_state(tx, first, SendState.SENDING, attempt=True))
    store.write(lambda tx: outbound_store.mark_sent(
        tx, store.read_tx(outbound_store.load, first), "wamid.FIRST"))
    assert store.read_tx(outbound_store.earlier_unfinished, third) == [second]
    assert store.read_tx(outbound_store.earlier_unfinished, second) == []


def test_numbers_a_sweep_opened_before_are_not_opened_again_and_it_keeps_only_the_unfinished(
        store) -> None:
    first, second = _pending(store), _pending(store)
    sweep = Sweep(opened={first: "6289999900000"})  # as left (not what is sealed: never opened)
    assert [row[2] for row in store.read_tx(outbound_store.unfinished, sweep.opened)] == [
        "6289999900000", NUMBER]
    told: list[str] = []

    class Workers:
        def tell(self, path: str, message: Send, key: str, *, wait: bool) -> None:
            told.append(message.id)

    ownership = Ownership("embedded", 4)
    ownership.set(dict.fromkeys(range(4), 1))
    store.write(lambda tx: outbound_store.set_state(tx, first, SendState.SENDING, attempt=True))
    store.write(lambda tx: outbound_store.mark_sent(
        tx, store.read_tx(outbound_store.load, first), "wamid.FIRST"))
    assert take_up_unfinished(store, cast(Registry, Workers()), ownership, sweep) == 1
    assert told == [second] and sweep.opened == {second: NUMBER}  # the sent one forgotten


def test_a_sweep_hands_each_unfinished_message_over_once_unless_the_worker_refused_it(
        store) -> None:
    first, second = _pending(store), _pending(store)
    told: list[str] = []
    full = {second}  # its worker's mailbox is full at the first sweep

    class Workers:
        def tell(self, path: str, message: Send, key: str, *, wait: bool) -> None:
            if message.id in full:
                full.discard(message.id)
                raise MailboxFull("full")
            told.append(message.id)

    ownership = Ownership("embedded", 4)
    ownership.set(dict.fromkeys(range(4), 1))
    sweep = Sweep()
    for _ in range(3):
        take_up_unfinished(store, cast(Registry, Workers()), ownership, sweep)
    assert told == [first, second]  # the refused one again at the next sweep, then never
    store.write(lambda tx: outbound_store.set_state(tx, first, SendState.SENDING, attempt=True))
    store.write(lambda tx: outbound_store.mark_sent(
        tx, store.read_tx(outbound_store.load, first), "wamid.FIRST"))
    take_up_unfinished(store, cast(Registry, Workers()), ownership, sweep)
    assert sweep.told == {second}  # the sent one forgotten
