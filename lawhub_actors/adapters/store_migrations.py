"""Bringing an existing store file up to the current schema, at open.

``PRAGMA user_version`` says which steps a file has had; each step runs
once, in its own transaction, and records its version in it (a crash
halfway leaves the step to run again whole).

- **2**: customers are keyed by a keyed hash (:meth:`Tx.ref`) instead of
  their number: ``customers.customer``, ``messages.customer``,
  ``outbound.recipient`` and the subjects of customer audit entries; the
  number is kept sealed (in the customer's profile, and in
  ``outbound.number`` for sends).
- **3**: Meta's message ids too (a wamid is the customer's number in base64
  and more): ``messages.wamid`` and ``statuses.wamid`` hold refs, the wamid
  itself is sealed in the message's content; every audit ``source`` (they
  name customers and wamids) is kept as its ref.
- **4**: the file is rewritten (``VACUUM``) and its WAL emptied, so no page
  keeps a copy of what steps 2 and 3 replaced.
- **5**: ``outbound.last_code``, Meta's code for a send's last failed
  attempt (its code 1 is tried again once only).
- **6**: ``nodes`` and ``partitions`` (the schema script makes them); the
  partitions start at the dispatcher's old single cursor when they are
  first made (:mod:`leases`).

Refs are keyed from the oldest master key version; :func:`check_refs`
refuses to open a file whose refs were made with another key (every
customer would look new: consent, windows and history lost).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from lawhub_actors.adapters.outbound_store import number_aad
from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.store_tx import WAMID, Tx, message_aad
from lawhub_actors.core.crypto import BLIND_PREFIX

VERSION = 6
CUSTOMER_AUDITS = ("consent", "intake", "auto_reply")
"""Audit kinds whose subject is a customer."""

_REFS = BLIND_PREFIX + "%"
"""What ``NOT LIKE`` leaves out: values already refs."""

REF_CHECK = ("_store", "ref-check")
"""What :func:`check_refs` blinds and keeps, to know the key refs are made with."""


class RefKeyChanged(Exception):
    """The file's refs were made with another key than the oldest one given."""


class SchemaTooNew(Exception):
    """The database was made or upgraded by a newer gateway than this one."""


def migrate(conn: sqlite3.Connection, tx_of: Callable[[Connection], Tx]) -> int:
    """Run the steps ``conn``'s file has not had; the version it was at.
    A file newer than this code is refused (:class:`SchemaTooNew`)."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > VERSION:
        raise SchemaTooNew(f"this store file's schema is version {version}; this code knows up "
                           f"to {VERSION}: run a newer gateway")
    steps: tuple[tuple[int, Callable[[sqlite3.Connection, Tx], None]], ...] = (
        (2, _customer_refs), (3, _wamid_and_source_refs))
    for step, run in steps:
        if version < step:
            _in_transaction(conn, run, tx_of, step)
    if version < 4:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA user_version=4")
    if version < 5:
        _in_transaction(conn, _last_code, tx_of, 5)
    if version < 6:
        _in_transaction(conn, lambda conn, tx: None, tx_of, 6)
    return int(version)


def file_version(path: Path) -> int:
    """The schema version of the store file at ``path`` (0: none yet)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(path)
    try:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        return int(version)
    finally:
        conn.close()


def check_refs(conn: Connection, tx: Tx) -> None:
    """Keep the ref of :data:`REF_CHECK` in a new file; in an older one,
    refuse to go on if today's keyring makes it differently."""
    conn.execute("CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY,"
                 " value TEXT NOT NULL)")
    expected = tx.ref(*REF_CHECK)
    row = conn.execute("SELECT value FROM store_meta WHERE key='ref_check'").fetchone()
    if row is None:
        conn.execute("INSERT INTO store_meta VALUES ('ref_check', ?)", (expected,))
    elif row[0] != expected:
        raise RefKeyChanged(
            "this store's customers are keyed with another master key than the oldest one "
            "given: keep the master key version the store began with (in "
            "LAWHUB_RETIRED_MASTER_KEYS once it is not the current one)")


def _in_transaction(conn: sqlite3.Connection, run: Callable[[sqlite3.Connection, Tx], None],
                    tx_of: Callable[[Connection], Tx], version: int) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        run(conn, tx_of(conn))
        conn.execute(f"PRAGMA user_version={int(version)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _last_code(conn: sqlite3.Connection, tx: Tx) -> None:
    if "last_code" not in {row[1] for row in conn.execute("PRAGMA table_info(outbound)")}:
        conn.execute("ALTER TABLE outbound ADD COLUMN last_code INTEGER")


def _customer_refs(conn: sqlite3.Connection, tx: Tx) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(outbound)")}
    if "number" not in columns:
        conn.execute("ALTER TABLE outbound ADD COLUMN key_id TEXT")
        conn.execute("ALTER TABLE outbound ADD COLUMN number BLOB")
    for tenant, customer, key_id, profile in conn.execute(
            "SELECT tenant, customer, key_id, profile FROM customers WHERE customer NOT LIKE ?",
            (_REFS,)).fetchall():
        ref = tx.ref(tenant, customer)
        old = {} if profile is None else tx.unseal(tenant, key_id, profile,
                                                   f"customer:{tenant}:{customer}")
        new_key, new_profile = tx.seal(tenant, {"name": old.get("name"), "number": customer},
                                       f"customer:{tenant}:{ref}")
        conn.execute("UPDATE customers SET customer=?, key_id=?, profile=?"
                     " WHERE tenant=? AND customer=?",
                     (ref, new_key, new_profile, tenant, customer))
    for tenant, customer in conn.execute(
            "SELECT DISTINCT tenant, customer FROM messages WHERE customer NOT LIKE ?",
            (_REFS,)).fetchall():
        conn.execute("UPDATE messages SET customer=? WHERE tenant=? AND customer=?",
                     (tx.ref(tenant, customer), tenant, customer))
    for message_id, tenant, recipient in conn.execute(
            "SELECT id, tenant, recipient FROM outbound WHERE number IS NULL").fetchall():
        key_id, number = tx.seal(tenant, recipient, number_aad(tenant, message_id))
        conn.execute("UPDATE outbound SET recipient=?, key_id=?, number=? WHERE id=?",
                     (tx.ref(tenant, recipient), key_id, number, message_id))
    for source, tenant, subject in conn.execute(
            "SELECT source, tenant, subject FROM audit WHERE kind IN (?, ?, ?)"
            " AND subject NOT LIKE ?", (*CUSTOMER_AUDITS, _REFS)).fetchall():
        conn.execute("UPDATE audit SET subject=? WHERE source=?",
                     (tx.ref(tenant, subject), source))


def _wamid_and_source_refs(conn: sqlite3.Connection, tx: Tx) -> None:
    for message_id, tenant, wamid in conn.execute(
            "SELECT id, tenant, wamid FROM messages WHERE wamid IS NOT NULL"
            " AND wamid NOT LIKE ?", (_REFS,)).fetchall():
        content = tx.message_content(tenant, message_id)
        assert content is not None
        key_id, blob = tx.seal(tenant, {**content, WAMID: wamid}, message_aad(tenant, message_id))
        conn.execute("UPDATE messages SET wamid=?, key_id=?, content=? WHERE id=?",
                     (tx.ref(tenant, wamid), key_id, blob, message_id))
    for tenant, wamid in conn.execute(
            "SELECT DISTINCT tenant, wamid FROM statuses WHERE wamid NOT LIKE ?",
            (_REFS,)).fetchall():
        conn.execute("UPDATE statuses SET wamid=? WHERE tenant=? AND wamid=?",
                     (tx.ref(tenant, wamid), tenant, wamid))
    for source, tenant, key_id, data in conn.execute(
            "SELECT source, tenant, key_id, data FROM audit WHERE source NOT LIKE ?",
            (_REFS,)).fetchall():
        ref = tx.ref(tenant, source)
        new_key, new_data = tx.seal(tenant, tx.unseal(tenant, key_id, data, f"audit:{source}"),
                                    f"audit:{ref}")
        conn.execute("UPDATE audit SET source=?, key_id=?, data=? WHERE source=?",
                     (ref, new_key, new_data, source))
