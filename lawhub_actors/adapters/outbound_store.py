"""Outbound messages in the store: the writes a send goes through, and reads.

Writes are functions of a :class:`Tx` (run inside ``Store.write``); reads
are functions of a read connection (``Store.read``). The states and the
moves between them are :mod:`lawhub_actors.core.send_lifecycle`'s: every
change of state is conditional on a state it may come from, so a move the
table does not allow raises :class:`IllegalMove` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.store_tx import WAMID, Tx, message_aad
from lawhub_actors.core.send_lifecycle import UNFINISHED, IllegalMove, SendState, may_move
from lawhub_actors.core.status import DeliveryState

_UNFINISHED = tuple(state.value for state in UNFINISHED)
_UNFINISHED_IN = f"state IN ({', '.join('?' * len(_UNFINISHED))})"
"""Placeholders only (S608 below): the states are bound as parameters."""


@dataclass(frozen=True, slots=True)
class Outbound:
    """An outbound message; ``recipient`` is the number (opened from its
    sealed copy: the row keys it by ``recipient_ref`` only)."""

    id: str
    tenant: str
    phone_number_id: str
    recipient: str
    state: SendState
    attempts: int
    automatic: bool
    content: dict[str, Any]
    wamid: str | None
    recipient_ref: str
    last_code: int | None = None
    """Meta's ``error.code`` for the last attempt that failed, if it gave one."""


def find_by_client_ref(tx: Tx, tenant: str, client_ref: str) -> str | None:
    row = tx.conn.execute(
        "SELECT id FROM outbound WHERE tenant=? AND client_ref=?", (tenant, client_ref)
    ).fetchone()
    return None if row is None else str(row[0])


def tier_usage(tx: Tx, phone_number_id: str, recipient_ref: str,
               since: float) -> tuple[int, bool]:
    """Unique users reached by business-initiated messages of the number since
    ``since``, and whether the one keyed ``recipient_ref`` is one of them."""
    row = tx.conn.execute(
        "SELECT COUNT(DISTINCT recipient), MAX(CASE WHEN recipient = ? THEN 1 ELSE 0 END)"
        " FROM outbound"
        " WHERE phone_number_id=? AND business_initiated=1 AND accepted_at >= ?",
        (recipient_ref, phone_number_id, since),
    ).fetchone()
    return int(row[0]), bool(row[1])


def insert(
    tx: Tx, tenant: str, *, phone_number_id: str, recipient: str, client_ref: str | None,
    content: dict[str, Any], business_initiated: bool, automatic: bool = False,
) -> str:
    """A new outbound message, ``pending``: our id."""
    message_id = tx.insert_message(
        tenant, recipient, direction="out", wamid=None, type_=content["type"],
        status="pending", content=content, sent_at=None, journal_seq=None,
    )
    assert message_id is not None  # no wamid yet: never a duplicate
    key_id, number = tx.seal(tenant, recipient, number_aad(tenant, message_id))
    tx.conn.execute(
        "INSERT INTO outbound (id, tenant, phone_number_id, recipient, key_id, number,"
        " client_ref, state, automatic, business_initiated, accepted_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
        (message_id, tenant, phone_number_id, tx.ref(tenant, recipient), key_id, number,
         client_ref, int(automatic), int(business_initiated), tx.now),
    )
    return message_id


def number_aad(tenant: str, message_id: str) -> str:
    """What binds a sealed recipient number to its outbound row."""
    return f"outbound:{tenant}:{message_id}"


def _number(tx: Tx, tenant: str, message_id: str, key_id: str, number: bytes) -> str:
    """The recipient's number, opened from its sealed copy."""
    return str(tx.unseal(tenant, key_id, number, number_aad(tenant, message_id)))


def load(tx: Tx, message_id: str) -> Outbound | None:
    """The message, its number and content opened (one statement: the
    outbound row and its message's)."""
    row = tx.conn.execute(
        "SELECT o.tenant, o.phone_number_id, o.key_id, o.number, o.state, o.attempts,"
        " o.automatic, o.recipient, o.last_code, m.key_id, m.content"
        " FROM outbound o JOIN messages m ON m.id = o.id WHERE o.id=?",
        (message_id,),
    ).fetchone()
    if row is None:
        return None
    (tenant, phone_number_id, key_id, number, state, attempts, automatic, ref, last_code,
     content_key, sealed) = row
    content = tx.unseal(tenant, content_key, sealed, message_aad(tenant, message_id))
    wamid = content.pop(WAMID, None)
    return Outbound(message_id, tenant, phone_number_id,
                    _number(tx, tenant, message_id, key_id, number), SendState(state),
                    int(attempts), bool(automatic), content, wamid, ref, last_code)


def progressed(tx: Tx, message: Outbound) -> Outbound | None:
    """``message`` (loaded earlier) with its state, attempts and last code as
    they are now, or None: no such message any more. Nothing unsealed."""
    row = tx.conn.execute("SELECT state, attempts, last_code FROM outbound WHERE id=?",
                          (message.id,)).fetchone()
    if row is None:
        return None
    return replace(message, state=SendState(row[0]), attempts=int(row[1]), last_code=row[2])


def state_of(tx: Tx, message_id: str) -> SendState | None:
    """The message's state alone (nothing unsealed), or None: no such message."""
    row = tx.conn.execute("SELECT state FROM outbound WHERE id=?", (message_id,)).fetchone()
    return None if row is None else SendState(row[0])


def set_state(tx: Tx, message_id: str, state: SendState, *, attempt: bool = False,
              current: SendState | None = None) -> SendState:
    """Move the message to ``state`` (counting an attempt); the state it was
    in (``current``, when this transaction has just read it). Raises
    :class:`IllegalMove` when it may not move there from that one. The
    update is conditional on that state: a row another node moved since is
    left as it is."""
    old = state_of(tx, message_id) if current is None else current
    if old is None:
        raise IllegalMove(f"outbound {message_id}: no such message")
    if not may_move(old, state):
        raise IllegalMove(f"outbound {message_id}: {old.value} -> {state.value}")
    tx.conn.execute(
        "UPDATE outbound SET state=?, attempts = attempts + ? WHERE id=? AND state=?",
        (state.value, int(attempt), message_id, old.value),
    )
    return old


def failed(tx: Tx, message_id: str, state: SendState, code: int | None) -> None:
    """An attempt failed with Meta's ``code``: to ``state`` (pending or
    unknown), the code kept for the next decision."""
    set_state(tx, message_id, state)
    tx.conn.execute("UPDATE outbound SET last_code=? WHERE id=?", (code, message_id))


def mark_sent(tx: Tx, message: Outbound, wamid: str,
              current: SendState | None = None) -> DeliveryState:
    """Meta accepted it: its wamid, and every status that came before it. A
    message dead-lettered meanwhile (an unsure outcome that ran out of
    attempts) leaves the dead-letter queue: Meta's word is the record.
    ``current``: its state, when this transaction has just read it."""
    if set_state(tx, message.id, SendState.SENT, current=current) is SendState.DEAD:
        undead(tx, message.id)
    return tx.attach_wamid(message.tenant, message.id, wamid, message.content)


def to_dlq(tx: Tx, message: Outbound, reason: str, error: dict[str, Any] | None) -> bool:
    """Dead-letter it; whether it was not already."""
    set_state(tx, message.id, SendState.DEAD)
    cursor = tx.conn.execute(
        "INSERT INTO dlq (id, tenant, at, reason, error) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (message.id, message.tenant, tx.now, reason,
         None if error is None else orjson.dumps(error).decode()),
    )
    if cursor.rowcount != 1:
        return False
    tx.audit(f"dlq:in:{message.id}:{message.attempts}:{tx.now}", message.tenant, "dlq_in",
             message.id, {"reason": reason, "error": error})
    return True


def undead(tx: Tx, message_id: str) -> bool:
    """Take the message out of the dead-letter queue; whether it was there."""
    cursor = tx.conn.execute("DELETE FROM dlq WHERE id=?", (message_id,))
    return cursor.rowcount == 1


def reset_attempts(tx: Tx, message_id: str) -> None:
    tx.conn.execute("UPDATE outbound SET attempts = 0, last_code = NULL WHERE id=?",
                    (message_id,))


def outbound_of_callback(tx: Tx, tenant: str, callback: str | None) -> str | None:
    """Our message whose id Meta echoed in ``biz_opaque_callback_data``."""
    if not callback:
        return None
    row = tx.conn.execute(
        "SELECT id FROM outbound WHERE tenant=? AND id=?", (tenant, callback)
    ).fetchone()
    return None if row is None else str(row[0])


# -- reads ---------------------------------------------------------------------


def unfinished(tx: Tx, opened: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(id, tenant, recipient's number) of every message not yet sent nor
    dead, in the order they were accepted: what a (re)start must take up
    again. ``opened``: numbers already opened, by message id (a sweep that
    runs every few seconds over a backlog opens each number once)."""
    known = opened or {}
    return [(str(i), str(t), known.get(i) or _number(tx, t, i, k, n))
            for i, t, k, n in tx.conn.execute(
                "SELECT id, tenant, key_id, number FROM outbound WHERE "  # noqa: S608
                + _UNFINISHED_IN + " ORDER BY accepted_at, rowid", _UNFINISHED).fetchall()]


def earlier_unfinished(tx: Tx, message_id: str) -> list[str]:
    """The recipient's messages before this one in the conversation and not
    yet sent nor dead, oldest first: they go first (a send accepted by
    another node may reach this one after a later one accepted here). The
    conversation's order is its ``conv_seq``, given in commit order
    whichever node accepted a message (never a node's clock)."""
    sql = ("SELECT o.id FROM outbound m JOIN messages mm ON mm.id = m.id"  # noqa: S608
           " JOIN outbound o ON o.tenant = m.tenant AND o.recipient = m.recipient"
           " JOIN messages mo ON mo.id = o.id"
           " WHERE m.id = ? AND o." + _UNFINISHED_IN + " AND mo.conv_seq < mm.conv_seq"
           " ORDER BY mo.conv_seq")
    return [str(row[0]) for row in tx.conn.execute(sql, (message_id, *_UNFINISHED))]


def unfinished_by_number(conn: Connection) -> dict[tuple[str, str], int]:
    """How many messages are not yet sent nor dead, by (tenant, phone_number_id)."""
    return {(str(t), str(n)): int(c) for t, n, c in conn.execute(
        "SELECT tenant, phone_number_id, COUNT(*) FROM outbound WHERE "  # noqa: S608
        + _UNFINISHED_IN
        + " GROUP BY tenant, phone_number_id", _UNFINISHED,
    )}


def describe(tx: Tx, tenant: str, message_id: str) -> dict[str, Any] | None:
    """One of the tenant's outbound messages with its status history (API)."""
    conn = tx.conn
    row = conn.execute(
        "SELECT o.phone_number_id, o.key_id, o.number, o.client_ref, o.state, o.attempts,"
        " o.automatic, o.accepted_at, m.wamid, m.type, m.status, m.status_error"
        " FROM outbound o JOIN messages m ON m.id = o.id WHERE o.tenant=? AND o.id=?",
        (tenant, message_id),
    ).fetchone()
    if row is None:
        return None
    (phone_number_id, key_id, number, client_ref, state, attempts, automatic, accepted_at,
     wamid_ref, type_, status, status_error) = row
    recipient = _number(tx, tenant, message_id, key_id, number)
    content = tx.message_content(tenant, message_id) or {}
    wamid = content.get(WAMID)
    history: list[dict[str, Any]] = [{"status": "accepted", "at": accepted_at}]
    if wamid_ref is not None:
        history += [
            {"status": status_, "at": float(at)}
            for status_, at in conn.execute(
                "SELECT status, received_at FROM statuses WHERE tenant=? AND wamid=?"
                " ORDER BY received_at", (tenant, wamid_ref),
            )
        ]
    return {
        "id": message_id, "phone_number_id": phone_number_id, "to": recipient,
        "client_ref": client_ref, "type": type_, "status": status, "state": state,
        "attempts": attempts, "automatic": bool(automatic), "wamid": wamid,
        "error": None if status_error is None else orjson.loads(status_error),
        "history": history,
    }


def dead_letters(tx: Tx, limit: int = 200) -> list[dict[str, Any]]:
    rows = tx.conn.execute(
        "SELECT d.id, d.tenant, d.at, d.reason, d.error, o.phone_number_id, o.attempts,"
        " o.key_id, o.number FROM dlq d JOIN outbound o ON o.id = d.id"
        " ORDER BY d.at DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {"id": message_id, "tenant": tenant, "at": at, "reason": reason,
         "error": None if error is None else orjson.loads(error),
         "phone_number_id": phone_number_id,
         "to": _number(tx, tenant, message_id, key_id, number), "attempts": attempts}
        for message_id, tenant, at, reason, error, phone_number_id, attempts, key_id, number
        in rows
    ]
