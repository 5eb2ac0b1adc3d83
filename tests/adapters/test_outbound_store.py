"""Outbound messages in the store: every change of state follows the send
lifecycle's table, and Meta's word settles a dead letter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lawhub_actors.adapters import outbound_store, store_reads
from lawhub_actors.adapters.sqlite_store import Store
from lawhub_actors.core.crypto import Keyring
from lawhub_actors.core.send_lifecycle import IllegalMove, SendState
from lawhub_actors.usecases import dead_letters

NUMBER = "6281234500001"


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path / "store.sqlite3", Keyring({1: os.urandom(32)}, 1))
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
