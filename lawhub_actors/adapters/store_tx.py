"""One write transaction of the store: the operations shards, actors and
handlers compose inside ``Store.write`` (customers, messages, statuses,
audit entries, media outcomes, feed events, quarantine, cursors).

Every write that belongs to one webhook update runs in one transaction,
and every effect has a unique key (see :mod:`sqlite_schema`): replaying a
journal entry finds its rows already there and emits nothing twice. Feed
events get a per-tenant, gap-free ``seq`` in the same transaction as the
fact they report.

Bodies, names and event payloads are sealed with the tenant's key
(AES-256-GCM, key id stored beside each blob, associated data binding the
blob to its row): the file never holds them in clear.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.store_rows import Customer, FeedEvent, MediaRecord
from lawhub_actors.core.status import DeliveryState, Status, StatusError, merge, merge_all
from lawhub_actors.core.status import parse as parse_status

WAMID = "wamid"
"""Where a message's content keeps Meta's id (sealed; the row has its ref:
a wamid is the customer's number in base64 and more)."""


def message_aad(tenant: str, message_id: str) -> str:
    """What binds a message's sealed content to its row."""
    return f"message:{tenant}:{message_id}"


OPERATORS = "_operators"
"""The key space of what belongs to no tenant (quarantined webhook data,
operators' audit entries)."""


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """A feed event emitted in a write, before its commit numbers it."""

    tenant: str
    type: str
    at: float
    data: dict[str, Any]
    payload: bytes
    """``data`` serialized, in the write's own savepoint (data that cannot be
    fails that write alone, not the commit it shares)."""


class Sealer(Protocol):
    def seal(self, tenant: str, plaintext: bytes, aad: bytes = b"") -> Any: ...

    def open(self, tenant: str, key_id: str, blob: bytes, aad: bytes = b"") -> bytes: ...

    def blind(self, tenant: str, value: str) -> str: ...


class Tx:
    """One transaction: the operations a write composes. ``Store.read_tx``
    also hands one, on a read connection, to reads that open sealed rows."""

    def __init__(self, conn: Connection, sealer: Sealer, now: float, row_lock: str = "",
                 held: set[tuple[int, int]] | None = None) -> None:
        self.conn = conn
        self._sealer = sealer
        self.now = now
        self.row_lock = row_lock
        """What makes a ``SELECT`` keep the rows it read locked until the
        commit (``" FOR SHARE"`` on PostgreSQL; SQLite has one writer)."""
        self.held: set[tuple[int, int]] = set() if held is None else held
        """(partition, epoch) this transaction has fenced and keeps locked
        to its commit (``leases.fence``): shared by the works of one commit;
        the store forgets what a work that was undone added (its savepoint's
        rollback released those locks)."""
        self.pending: list[PendingEvent] = []
        """Feed events emitted so far, numbered at the commit (:meth:`number`)."""

    def seal(self, tenant: str, value: Any, aad: str) -> tuple[str, bytes]:
        sealed = self._sealer.seal(tenant, orjson.dumps(value), aad.encode())
        return sealed.key_id, sealed.blob

    def unseal(self, tenant: str, key_id: str, blob: bytes, aad: str) -> Any:
        """What :meth:`seal` sealed with ``aad``, opened."""
        return orjson.loads(self._sealer.open(tenant, key_id, blob, aad.encode()))

    def ref(self, tenant: str, customer: str) -> str:
        """What the store keys ``customer`` (a number, a BSUID) by: a keyed
        hash, never the number itself (``Keyring.blind``)."""
        return str(self._sealer.blind(tenant, customer))

    def customer(self, tenant: str, customer: str) -> Customer | None:
        row = self.conn.execute(
            "SELECT kind, consent, last_inbound_at FROM customers WHERE tenant=? AND customer=?",
            (tenant, self.ref(tenant, customer)),
        ).fetchone()
        return None if row is None else Customer(tenant, customer, row[0], row[1], row[2])

    def add_lead(self, tenant: str, customer: str, profile_name: str | None, *,
                 inbound_at: float | None = None) -> None:
        """A new lead; with ``inbound_at``, its 24-hour window open from then.
        Another node may have made it meanwhile: then it stays as it is, its
        window only moved forward to ``inbound_at``."""
        ref = self.ref(tenant, customer)
        key_id, blob = self.seal(tenant, {"name": profile_name, "number": customer},
                                 f"customer:{tenant}:{ref}")
        self.conn.execute(
            "INSERT INTO customers (tenant, customer, kind, consent, created_at, key_id, profile,"
            " last_inbound_at) VALUES (?, ?, 'lead', 'unknown', ?, ?, ?, ?)"
            " ON CONFLICT (tenant, customer) DO UPDATE SET last_inbound_at = CASE WHEN"
            " COALESCE(customers.last_inbound_at, 0) < excluded.last_inbound_at"
            " THEN excluded.last_inbound_at ELSE customers.last_inbound_at END",
            (tenant, ref, self.now, key_id, blob, inbound_at),
        )

    def arrived(self, tenant: str, customer: str, at: float) -> bool:
        """A message from ``customer`` sent at ``at``: its 24-hour window runs
        from its latest message (one that arrives late never moves it back);
        whether the customer was known. One statement for the lookup and the
        touch: the inbound path's cost is its statements (on PostgreSQL, each
        a round trip)."""
        row = self.conn.execute(
            "UPDATE customers SET last_inbound_at = CASE WHEN COALESCE(last_inbound_at, 0) < ?"
            " THEN ? ELSE last_inbound_at END WHERE tenant=? AND customer=? RETURNING 1",
            (at, at, tenant, self.ref(tenant, customer)),
        ).fetchone()
        return row is not None

    def set_consent(self, tenant: str, customer: str, consent: str) -> None:
        self.conn.execute(
            "UPDATE customers SET consent=? WHERE tenant=? AND customer=?",
            (consent, tenant, self.ref(tenant, customer)),
        )

    def insert_message(
        self, tenant: str, customer: str, *, direction: str, wamid: str | None, type_: str,
        status: str, content: dict[str, Any], sent_at: int | None, journal_seq: int | None,
    ) -> str | None:
        """Our id for the new message; ``None`` when ``wamid`` is already stored
        (found by the insert itself, not a lookup before it: a statement less
        for every new message, the replay pays one more)."""
        if wamid is not None:
            content = {**content, WAMID: wamid}
        message_id = uuid.uuid4().hex
        ref = self.ref(tenant, customer)
        # The conversation's counter row stays locked to the commit: two nodes
        # writing one conversation (its owner, and an API send elsewhere) take
        # turns, and conv_seq follows commit order. Its first value carries on
        # from messages stored before the counter existed.
        (seq,) = self.conn.execute(
            "INSERT INTO conversation_seq (tenant, customer, last) VALUES (?, ?,"
            " (SELECT COALESCE(MAX(conv_seq), 0) + 1 FROM messages WHERE tenant=? AND customer=?))"
            " ON CONFLICT (tenant, customer) DO UPDATE SET last = conversation_seq.last + 1"
            " RETURNING last", (tenant, ref, tenant, ref)).fetchone()
        key_id, blob = self.seal(tenant, content, message_aad(tenant, message_id))
        inserted = self.conn.execute(
            "INSERT INTO messages (id, tenant, customer, conv_seq, direction, wamid, type, status,"
            " created_at, sent_at, journal_seq, key_id, content)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (tenant, wamid) DO NOTHING RETURNING 1",
            (message_id, tenant, ref, int(seq), direction,
             None if wamid is None else self.ref(tenant, wamid), type_, status, self.now,
             sent_at, journal_seq, key_id, blob),
        ).fetchone()
        if inserted is None:  # a replay: give the number back (its row is still ours)
            self.conn.execute("UPDATE conversation_seq SET last = last - 1"
                              " WHERE tenant=? AND customer=?", (tenant, ref))
            return None
        return message_id

    def message_id(self, tenant: str, wamid: str) -> str | None:
        row = self.conn.execute(
            "SELECT id FROM messages WHERE tenant=? AND wamid=?", (tenant, self.ref(tenant, wamid))
        ).fetchone()
        return None if row is None else str(row[0])

    def insert_status(self, tenant: str, wamid: str, status: str, at: int, raw: Any) -> bool:
        """Whether this (wamid, status) is new."""
        key_id, blob = self.seal(tenant, raw, f"status:{tenant}:{wamid}:{status}")
        cursor = self.conn.execute(
            "INSERT INTO statuses (tenant, wamid, status, at, received_at, key_id, raw)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (tenant, self.ref(tenant, wamid), status, at, self.now, key_id, blob),
        )
        return cursor.rowcount == 1

    def apply_status(
        self, tenant: str, wamid: str, incoming: DeliveryState
    ) -> tuple[str, DeliveryState] | None:
        """Merge a status into the outbound message known by ``wamid``:
        ``(our id, merged state)``, or ``None`` while no message has that
        ``wamid`` yet (the status stays parked in ``statuses``)."""
        row = self.conn.execute(
            "SELECT id, status, status_error FROM messages"
            " WHERE tenant=? AND wamid=? AND direction='out'",
            (tenant, self.ref(tenant, wamid)),
        ).fetchone()
        if row is None:
            return None
        message_id, status, error = row
        current = DeliveryState(Status(status), _error_from(error))
        merged, changed = merge(current, incoming)
        if changed:
            self._set_state(message_id, merged)
        return message_id, merged

    def attach_wamid(self, tenant: str, message_id: str, wamid: str,
                     content: dict[str, Any]) -> DeliveryState:
        """Record Meta's id of one of our messages (``content``: as the
        sender holds it opened, sealed again with the id), and apply every
        status that arrived before it was known."""
        aad = message_aad(tenant, message_id)
        key_id, blob = self.seal(tenant, {**content, WAMID: wamid}, aad)
        row = self.conn.execute(
            "UPDATE messages SET wamid=?, key_id=?, content=? WHERE id=? AND tenant=?"
            " RETURNING status, status_error",
            (self.ref(tenant, wamid), key_id, blob, message_id, tenant)).fetchone()
        if row is None:
            raise KeyError(message_id)
        parked = [
            state_from_status(self.unseal(tenant, key_id, raw, f"status:{tenant}:{wamid}:{status}"))
            for status, key_id, raw in self.conn.execute(
                "SELECT status, key_id, raw FROM statuses WHERE tenant=? AND wamid=?",
                (tenant, self.ref(tenant, wamid)),
            )
        ]
        current = DeliveryState(Status(row[0]), _error_from(row[1]))
        merged = merge_all(current, [state for state in parked if state is not None])
        if merged != current:
            self._set_state(message_id, merged)
        return merged

    def _set_state(self, message_id: str, state: DeliveryState) -> None:
        error = None if state.error is None else orjson.dumps(_error_dict(state.error)).decode()
        self.conn.execute(
            "UPDATE messages SET status=?, status_error=? WHERE id=?",
            (state.status.value, error, message_id),
        )

    def message_content(self, tenant: str, message_id: str) -> dict[str, Any] | None:
        """A message's sealed content, opened (Meta's id under :data:`WAMID`
        once known: the row keys it by its ref only)."""
        row = self.conn.execute(
            "SELECT key_id, content FROM messages WHERE tenant=? AND id=?", (tenant, message_id)
        ).fetchone()
        if row is None:
            return None
        aad = message_aad(tenant, message_id)
        content: dict[str, Any] = self.unseal(tenant, row[0], row[1], aad)
        return content

    def audit(self, source: str, tenant: str, kind: str, subject: str, data: Any) -> bool:
        """Whether the entry is new (``source`` makes replays no-ops; it is
        kept as its ref: sources name customers and wamids, and a wamid
        encodes the customer's number)."""
        ref = self.ref(tenant, source)
        key_id, blob = self.seal(tenant, data, f"audit:{ref}")
        cursor = self.conn.execute(
            "INSERT INTO audit (source, tenant, at, kind, subject, key_id, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (ref, tenant, self.now, kind, subject, key_id, blob),
        )
        return cursor.rowcount == 1

    def record_media(self, tenant: str, message_id: str, media: MediaRecord) -> bool:
        """Whether this is the message's first media outcome (replays: no-op)."""
        cursor = self.conn.execute(
            "INSERT INTO media (tenant, message_id, verdict, reason, shelf, ref,"
            " mime_type, size, scanner, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (tenant, message_id, media.verdict, media.reason, media.shelf, media.ref,
             media.mime_type, media.size, media.scanner, self.now),
        )
        return cursor.rowcount == 1

    def media_recorded(self, tenant: str, message_id: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM media WHERE tenant=? AND message_id=?", (tenant, message_id)
        ).fetchone()
        return row is not None

    def audited(self, source: str) -> bool:
        row = self.conn.execute("SELECT 1 FROM audit WHERE source=?", (source,)).fetchone()
        return row is not None

    def emit(self, tenant: str, type_: str, data: dict[str, Any]) -> None:
        """A feed event of this write: numbered and stored at its commit."""
        self.pending.append(PendingEvent(tenant, type_, self.now, data, orjson.dumps(data)))

    def number(self, pending: Sequence[PendingEvent]) -> list[FeedEvent]:
        """Give ``pending`` their per-tenant ``seq`` and store them, sealed;
        the events, in the same order. Run once per transaction, last: each
        tenant's counter row stays locked until the commit, and taking them
        at the end and in the tenants' name order, concurrent commits (other
        nodes') never wait on each other in a circle, and a tenant's seq is
        given in commit order."""
        counts = Counter(event.tenant for event in pending)
        next_seq: dict[str, int] = {}
        for tenant in sorted(counts):
            (last,) = self.conn.execute(
                "INSERT INTO tenant_seq (tenant, last) VALUES (?, ?) ON CONFLICT (tenant)"
                " DO UPDATE SET last = tenant_seq.last + ? RETURNING last",
                (tenant, counts[tenant], counts[tenant])).fetchone()
            next_seq[tenant] = int(last) - counts[tenant] + 1
        events, rows = [], []
        for event in pending:
            seq = next_seq[event.tenant]
            next_seq[event.tenant] = seq + 1
            sealed = self._sealer.seal(event.tenant, event.payload,
                                       f"event:{event.tenant}:{seq}".encode())
            key_id, blob = sealed.key_id, sealed.blob
            rows.append((event.tenant, seq, event.type, event.at, key_id, blob))
            events.append(FeedEvent(event.tenant, seq, event.type, event.at, event.data))
        if rows:
            self.conn.executemany(
                "INSERT INTO events (tenant, seq, type, at, key_id, data)"
                " VALUES (?, ?, ?, ?, ?, ?)", rows)
        return events

    def quarantine(self, journal_seq: int | None, phone_number_id: str | None, reason: str,
                   data: Any) -> None:
        entry_id = uuid.uuid5(
            uuid.NAMESPACE_URL, f"{journal_seq}:{phone_number_id}:{reason}:{orjson.dumps(data)!r}"
        ).hex
        key_id, blob = self.seal(OPERATORS, data, f"quarantine:{entry_id}")
        self.conn.execute(
            "INSERT INTO quarantine (id, at, journal_seq, phone_number_id, reason,"
            " key_id, data) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (entry_id, self.now, journal_seq, phone_number_id, reason, key_id, blob),
        )


def _error_dict(error: StatusError) -> dict[str, Any]:
    return {"code": error.code, "title": error.title, "message": error.message,
            "details": error.details}


def _error_from(text: str | None) -> StatusError | None:
    return None if text is None else StatusError(**orjson.loads(text))


def state_from_status(raw: dict[str, Any]) -> DeliveryState | None:
    """A stored raw status (as shards record it) as a delivery state;
    ``None`` for a status name this code does not know."""
    status = parse_status(str(raw.get("status", "")))
    if status is None:
        return None
    if status is not Status.FAILED:
        return DeliveryState(status)
    errors = raw.get("errors") or [{}]
    first = errors[0]
    return DeliveryState(status, StatusError(
        code=int(first.get("code") or -1), title=first.get("title") or "",
        message=first.get("message") or "", details=first.get("details") or "",
    ))
