"""Reads of the store for the dispatcher, the API, the feed, operators and
metrics: functions of a read connection (``Store.read``), or of a
:class:`Tx` where they open sealed rows (``Store.read_tx``). Outbound
messages' reads are in :mod:`outbound_store`.
"""

from __future__ import annotations

from typing import Any

from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.store_rows import FeedEvent, MediaRecord, StoredMessage
from lawhub_actors.adapters.store_tx import OPERATORS, WAMID, Tx, message_aad
from lawhub_actors.core.operator_view import for_operators


def events_after(tx: Tx, tenant: str, since: int, limit: int = 500) -> list[FeedEvent]:
    rows = tx.conn.execute(
        "SELECT seq, type, at, key_id, data FROM events WHERE tenant=? AND seq > ?"
        " ORDER BY seq LIMIT ?",
        (tenant, since, limit),
    ).fetchall()
    return [
        FeedEvent(tenant, seq, type_, at, tx.unseal(tenant, key_id, data, f"event:{tenant}:{seq}"))
        for seq, type_, at, key_id, data in rows
    ]


def conversation(
    tx: Tx, tenant: str, customer: str, *, limit: int = 50, before: int | None = None
) -> list[StoredMessage]:
    """The customer's messages, both directions, oldest first; ``before``
    pages back by conversation position."""
    rows = tx.conn.execute(
        "SELECT m.id, m.conv_seq, m.direction, m.wamid, m.type, m.status, m.created_at,"
        " m.key_id, m.content, x.verdict, x.reason, x.shelf, x.ref, x.mime_type, x.size,"
        " x.scanner FROM messages m LEFT JOIN media x"
        " ON x.tenant = m.tenant AND x.message_id = m.id"
        " WHERE m.tenant=? AND m.customer=? AND m.conv_seq < ?"
        " ORDER BY m.conv_seq DESC LIMIT ?",
        (tenant, tx.ref(tenant, customer), before if before is not None else 2**62, limit),
    ).fetchall()
    messages = []
    for (message_id, conv_seq, direction, _wamid_ref, type_, status, created_at, key_id, sealed,
         *media) in reversed(rows):
        content = tx.unseal(tenant, key_id, sealed, message_aad(tenant, message_id))
        messages.append(StoredMessage(
            message_id, customer, conv_seq, direction, content.get(WAMID), type_, status,
            created_at, content, None if media[0] is None else MediaRecord(*media)))
    return messages


def quarantined(tx: Tx, limit: int = 100) -> list[dict[str, Any]]:
    """Quarantined webhook data, newest first, as operators may see it
    (:func:`~lawhub_actors.core.operator_view.for_operators`: ids, types,
    sizes and reasons, never a client's words)."""
    rows = tx.conn.execute(
        "SELECT id, at, journal_seq, phone_number_id, reason, key_id, data FROM quarantine"
        " ORDER BY at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {"id": entry_id, "at": at, "journal_seq": journal_seq,
         "phone_number_id": phone_number_id, "reason": reason,
         "data": for_operators(tx.unseal(OPERATORS, key_id, data, f"quarantine:{entry_id}"))}
        for entry_id, at, journal_seq, phone_number_id, reason, key_id, data in rows
    ]


def audited_entries(tx: Tx, tenant: str, kind: str, limit: int = 100) -> list[dict[str, Any]]:
    """The tenant's audit entries of one kind, newest first, decrypted."""
    rows = tx.conn.execute(
        "SELECT source, at, subject, key_id, data FROM audit WHERE tenant=? AND kind=?"
        " ORDER BY at DESC, rowid DESC LIMIT ?",
        (tenant, kind, limit),
    ).fetchall()
    return [
        {"at": at, "subject": subject, "data": tx.unseal(tenant, key_id, data, f"audit:{source}")}
        for source, at, subject, key_id, data in rows
    ]


def media(conn: Connection, tenant: str, ref: str) -> MediaRecord | None:
    """The tenant's media outcome whose file is ``ref`` (another tenant's: None)."""
    row = conn.execute(
        "SELECT verdict, reason, shelf, ref, mime_type, size, scanner FROM media"
        " WHERE tenant=? AND ref=?",
        (tenant, ref),
    ).fetchone()
    return None if row is None else MediaRecord(*row)


def quarantined_media(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """Media that did not pass, newest first (no content: ids and reasons)."""
    rows = conn.execute(
        "SELECT tenant, message_id, verdict, reason, ref, mime_type, size, scanner, at"
        " FROM media WHERE verdict != 'clean' ORDER BY at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    keys = ("tenant", "message_id", "verdict", "reason", "ref", "mime_type", "size",
            "scanner", "at")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def operator_counts(conn: Connection) -> dict[str, int]:
    """What waits for operators: dead letters, and quarantined webhook
    entries plus media that is not clean."""
    dlq, quarantine = conn.execute(
        "SELECT (SELECT COUNT(*) FROM dlq),"
        " (SELECT COUNT(*) FROM quarantine)"
        " + (SELECT COUNT(*) FROM media WHERE verdict != 'clean')"
    ).fetchone()
    return {"dlq": int(dlq), "quarantine": int(quarantine)}


def count(conn: Connection, /, table: str, **where: str) -> int:
    """Rows of ``table`` matching ``where`` (for operators and tests)."""
    if table not in {"customers", "messages", "statuses", "events", "audit", "quarantine",
                     "media", "outbound", "dlq"}:
        raise ValueError(f"unknown table {table!r}")
    if not all(column.isidentifier() for column in where):
        raise ValueError("column names must be identifiers")
    clause = " AND ".join(f"{column}=?" for column in where) or "1=1"
    query = f"SELECT COUNT(*) FROM {table} WHERE {clause}"  # noqa: S608 - names checked above
    return int(conn.execute(query, tuple(where.values())).fetchone()[0])
