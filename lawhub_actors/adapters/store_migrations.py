"""Bringing an existing store file up to the current schema, at open.

``PRAGMA user_version`` says which migrations a file has had; each runs
once, in one transaction, and is idempotent on its own (a file that had it
halfway, by a crash, is finished the same way).

Version 2 keys customers by a keyed hash (:meth:`Tx.ref`) instead of their
number: ``customers.customer``, ``messages.customer``, ``outbound.recipient``
and the subjects of customer audit entries (``consent``, ``intake``,
``auto_reply``) become refs; the number is kept sealed (in the customer's
profile, and in ``outbound.number`` for sends). Overwritten pages are
zeroed (``secure_delete``) and the WAL is emptied afterwards, so the numbers
do not linger in the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from lawhub_actors.adapters.outbound_store import number_aad
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.crypto import BLIND_PREFIX

VERSION = 2
CUSTOMER_AUDITS = ("consent", "intake", "auto_reply")
"""Audit kinds whose subject is a customer."""

_REFS = BLIND_PREFIX + "%"
"""What ``NOT LIKE`` leaves out: values already refs."""


def migrate(conn: sqlite3.Connection, tx_of: Callable[[sqlite3.Connection], Tx]) -> int:
    """Run what ``conn``'s file has not had; the version it was at."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version >= VERSION:
        return int(version)
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("BEGIN IMMEDIATE")
    try:
        _customer_refs(conn, tx_of(conn))
        conn.execute(f"PRAGMA user_version={VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.execute("PRAGMA secure_delete=OFF")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return int(version)


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
