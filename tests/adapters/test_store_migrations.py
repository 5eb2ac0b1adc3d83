"""A store file from before customers were keyed by a keyed hash is brought
up to date at open: nothing lost, no number left in the file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import orjson

from lawhub_actors.adapters import outbound_store, store_reads
from lawhub_actors.adapters.sqlite_schema import SCHEMA
from lawhub_actors.adapters.sqlite_store import SqliteDatabase
from lawhub_actors.adapters.store import Store
from lawhub_actors.adapters.store_migrations import VERSION
from lawhub_actors.core.crypto import Keyring

NUMBER = "6281234500301"
KEYRING_KEY = os.urandom(32)
KEYRING = Keyring({1: KEYRING_KEY}, 1)
OLD_OUTBOUND = """
CREATE TABLE outbound (
    id TEXT PRIMARY KEY, tenant TEXT NOT NULL, phone_number_id TEXT NOT NULL,
    recipient TEXT NOT NULL, client_ref TEXT, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, automatic INTEGER NOT NULL DEFAULT 0,
    business_initiated INTEGER NOT NULL, accepted_at REAL NOT NULL, UNIQUE (tenant, client_ref)
);
CREATE TABLE dlq (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, at REAL NOT NULL,
                  reason TEXT NOT NULL, error TEXT);
"""


def _sealed(value: object, aad: str) -> tuple[str, bytes]:
    sealed = KEYRING.seal("firm-a", orjson.dumps(value), aad.encode())
    return sealed.key_id, sealed.blob


def _old_store(path: Path) -> None:
    """A file as the store wrote it before version 2: numbers in clear."""
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA + OLD_OUTBOUND)
        db.execute("INSERT INTO customers VALUES ('firm-a', ?, 'lead', 'granted', 1.0, 2.0, ?, ?)",
                   (NUMBER, *_sealed({"name": "Siti"}, f"customer:firm-a:{NUMBER}")))
        for seq, (message_id, direction, text) in enumerate(
                [("m1", "in", "halo"), ("m2", "in", "tolong"), ("m3", "out", "baik")], 1):
            db.execute(
                "INSERT INTO messages (id, tenant, customer, conv_seq, direction, wamid, type,"
                " status, created_at, key_id, content) VALUES (?, 'firm-a', ?, ?, ?, ?, 'text',"
                " 'received', 1.0, ?, ?)",
                (message_id, NUMBER, seq, direction, f"wamid.{message_id}",
                 *_sealed({"type": "text", "text": text}, f"message:firm-a:{message_id}")))
        db.execute("INSERT INTO outbound (id, tenant, phone_number_id, recipient, state,"
                   " business_initiated, accepted_at) VALUES ('m3', 'firm-a', '106540352242922',"
                   " ?, 'pending', 0, 1.0)", (NUMBER,))
        db.execute("INSERT INTO audit VALUES ('consent-1', 'firm-a', 1.0, 'consent', ?, ?, ?)",
                   (NUMBER, *_sealed({"to": "granted"}, "audit:consent-1")))


def test_an_old_store_is_keyed_by_refs_at_open_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "lawhub.sqlite3"
    _old_store(path)
    store = Store(SqliteDatabase(path), KEYRING)
    try:
        messages = store.read_tx(store_reads.conversation, "firm-a", NUMBER)
        assert [m.content["text"] for m in messages] == ["halo", "tolong", "baik"]
        customer = store.read_tx(lambda tx: tx.customer("firm-a", NUMBER))
        assert customer is not None and customer.consent == "granted"
        sent = store.read_tx(outbound_store.load, "m3")
        assert sent is not None and sent.recipient == NUMBER
        assert [m.wamid for m in messages] == ["wamid.m1", "wamid.m2", "wamid.m3"]
        assert sent.wamid == "wamid.m3" and "wamid" not in sent.content
        assert store.read(lambda conn: conn.execute(
            "SELECT subject FROM audit WHERE source=?", (KEYRING.blind("firm-a", "consent-1"),)
        ).fetchone()[0]) == KEYRING.blind("firm-a", NUMBER)
        assert store.read(lambda conn: conn.execute("PRAGMA user_version").fetchone()[0]) == VERSION
    finally:
        store.close()
    for name in os.listdir(tmp_path):
        kept = (tmp_path / name).read_bytes()
        for clear in (NUMBER.encode(), b"wamid.m", b"consent-1"):
            assert clear not in kept, (name, clear)


def test_a_migrated_store_opens_again_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "lawhub.sqlite3"
    _old_store(path)
    Store(SqliteDatabase(path), KEYRING).close()
    before = sqlite3.connect(path).execute("SELECT customer, key_id, profile FROM customers"
                                           ).fetchall()
    store = Store(SqliteDatabase(path), KEYRING)
    try:
        assert store.read(lambda conn: conn.execute(
            "SELECT customer, key_id, profile FROM customers").fetchall()) == before
        assert len(store.read_tx(store_reads.conversation, "firm-a", NUMBER)) == 3
    finally:
        store.close()


def test_a_new_store_keeps_no_number_in_clear(tmp_path: Path) -> None:
    from lawhub_actors.adapters.store_tx import Tx

    path = tmp_path / "lawhub.sqlite3"
    store = Store(SqliteDatabase(path), KEYRING)

    def write(tx: Tx) -> None:
        tx.add_lead("firm-a", NUMBER, "Siti")
        tx.insert_message("firm-a", NUMBER, direction="in", wamid="wamid.x", type_="text",
                          status="received", content={"text": "halo"}, sent_at=None,
                          journal_seq=1)
        outbound_store.insert(tx, "firm-a", phone_number_id="106540352242922", recipient=NUMBER,
                              client_ref=None, content={"type": "text", "text": "baik"},
                              business_initiated=False)

    try:
        store.write(write)
    finally:
        store.close()
    for name in os.listdir(tmp_path):
        assert NUMBER.encode() not in (tmp_path / name).read_bytes(), name


def test_a_store_refuses_to_open_with_another_key_for_its_refs(tmp_path: Path) -> None:
    import pytest

    from lawhub_actors.adapters.store_migrations import RefKeyChanged

    path = tmp_path / "lawhub.sqlite3"
    Store(SqliteDatabase(path), KEYRING).close()
    rotated = Keyring({1: KEYRING_KEY, 2: os.urandom(32)}, 2)
    Store(SqliteDatabase(path), rotated).close()  # the oldest version is kept: the same refs
    with pytest.raises(RefKeyChanged, match="LAWHUB_RETIRED_MASTER_KEYS"):
        Store(SqliteDatabase(path), Keyring({2: os.urandom(32)}, 2))  # version 1 dropped: every ref would change
