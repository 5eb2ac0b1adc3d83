"""The configuration every node runs, kept in the store.

A change applied on any node (``PUT /admin/config`` or ``SIGHUP``) is kept
as the next version, sealed, in the same transaction as its audit entry
(stored once, audited once); the other nodes hear of it and apply the
highest version themselves, without storing or auditing it again.
"""

from __future__ import annotations

from dataclasses import dataclass

from lawhub_actors.adapters.store_tx import OPERATORS, Tx


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    version: int
    text: str
    by: str
    via: str


def record(tx: Tx, text: str, *, by: str, via: str) -> int:
    """Keep ``text`` as the next version; its number."""
    (last,) = tx.conn.execute("SELECT COALESCE(MAX(version), 0) FROM config_versions").fetchone()
    version = int(last) + 1
    key_id, blob = tx.seal(OPERATORS, text, f"config:{version}")
    tx.conn.execute("INSERT INTO config_versions (version, at, by, via, key_id, text)"
                    " VALUES (?, ?, ?, ?, ?, ?)", (version, tx.now, by, via, key_id, blob))
    return version


def latest(tx: Tx) -> ConfigVersion | None:
    row = tx.conn.execute("SELECT version, by, via, key_id, text FROM config_versions"
                          " ORDER BY version DESC LIMIT 1").fetchone()
    if row is None:
        return None
    version, by, via, key_id, blob = row
    return ConfigVersion(int(version), str(tx.unseal(OPERATORS, key_id, blob, f"config:{version}")),
                         str(by), str(via))
