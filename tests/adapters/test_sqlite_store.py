"""The store: idempotent effects, gap-free feed seq, sealed rows, status merge."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lawhub_actors.adapters.sqlite_store import Store
from lawhub_actors.core.crypto import Keyring
from lawhub_actors.core.status import DeliveryState, Status, StatusError


@pytest.fixture
def store(tmp_path: Path):  # noqa: ANN201
    store = Store(tmp_path / "store.sqlite3", Keyring({1: os.urandom(32)}, 1))
    yield store
    store.close()


def _outbound(store: Store) -> str:
    with store.transaction() as tx:
        message_id = tx.insert_message(
            "firm-a", "6281234500001", direction="out", wamid=None, type_="text",
            status="pending", content={"text": "Jadwal sidang Anda besok"}, sent_at=None,
            journal_seq=None,
        )
    assert message_id is not None
    return message_id


def _status(store: Store, wamid: str, state: DeliveryState) -> tuple[str, DeliveryState] | None:
    with store.transaction() as tx:
        return tx.apply_status("firm-a", wamid, state)


def test_a_message_with_a_known_wamid_is_stored_once(store) -> None:
    ids = []
    for _ in range(2):
        with store.transaction() as tx:
            ids.append(tx.insert_message(
                "firm-a", "c1", direction="in", wamid="wamid.A", type_="text", status="received",
                content={"text": "halo"}, sent_at=1, journal_seq=1,
            ))
    assert ids[0] is not None and ids[1] is None
    assert store.count("messages") == 1


def test_feed_seq_is_per_tenant_gap_free_and_rolls_back_with_its_transaction(store) -> None:
    with store.transaction() as tx:
        first = [tx.emit("firm-a", "x", {}).seq, tx.emit("firm-b", "x", {}).seq]
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.emit("firm-a", "x", {})
        raise RuntimeError("the fact could not be stored")
    with store.transaction() as tx:
        second = tx.emit("firm-a", "x", {}).seq
    assert first == [1, 1] and second == 2
    assert [e.seq for e in store.events_after("firm-a", 0)] == [1, 2]


def test_statuses_merge_monotonically_into_the_outbound_message(store) -> None:
    message_id = _outbound(store)
    with store.transaction() as tx:
        tx.attach_wamid("firm-a", message_id, "wamid.OUT")
    for status in (Status.DELIVERED, Status.READ, Status.DELIVERED, Status.SENT):
        applied = _status(store, "wamid.OUT", DeliveryState(status))
        assert applied is not None and applied[0] == message_id
    assert applied[1].status is Status.READ  # never read -> delivered


def test_a_status_before_its_wamid_is_known_is_parked_then_applied(store) -> None:
    message_id = _outbound(store)
    with store.transaction() as tx:
        raw = {"status": "delivered", "errors": []}
        assert tx.insert_status("firm-a", "wamid.EARLY", "delivered", 5, raw)
        assert tx.apply_status("firm-a", "wamid.EARLY", DeliveryState(Status.DELIVERED)) is None
    with store.transaction() as tx:
        merged = tx.attach_wamid("firm-a", message_id, "wamid.EARLY")
    assert merged.status is Status.DELIVERED
    conversation = store.conversation("firm-a", "6281234500001")
    assert conversation[0].status == "delivered"


def test_a_failed_status_carries_its_error(store) -> None:
    message_id = _outbound(store)
    with store.transaction() as tx:
        tx.attach_wamid("firm-a", message_id, "wamid.F")
    error = StatusError(code=131026, title="Message undeliverable")
    applied = _status(store, "wamid.F", DeliveryState(Status.FAILED, error))
    assert applied is not None and applied[1].error == error


def test_bodies_names_and_payloads_never_reach_the_file_in_clear(store, tmp_path) -> None:
    with store.transaction() as tx:
        tx.add_lead("firm-a", "6281234500009", "Siti Aminah")
        tx.insert_message("firm-a", "6281234500009", direction="in", wamid="wamid.S",
                          type_="text", status="received", content={"text": "warisan ayah saya"},
                          sent_at=1, journal_seq=1)
        tx.emit("firm-a", "message.received", {"text": "warisan ayah saya"})
    store.close()
    for file in tmp_path.iterdir():
        raw = file.read_bytes()
        assert b"warisan ayah saya" not in raw and b"Siti Aminah" not in raw, file.name
