"""The embedded store (SQLite, WAL): customers, messages, statuses, feed
events, consent audit, quarantine, and the dispatcher's journal cursor.

Every write that belongs to one webhook update runs in one transaction, and
every effect has a unique key (``(tenant, wamid)`` for messages,
``(tenant, wamid, status)`` for statuses, ``source`` for audit entries):
replaying a journal entry finds its rows already there and emits nothing
twice. Feed events get a per-tenant, gap-free ``seq`` in the same
transaction as the fact they report.

Bodies, names and event payloads are sealed with the tenant's key (AES-256-GCM,
key id stored beside each blob, associated data binding the blob to its
row): the file never holds them in clear. Reads use one connection per thread.

Writes are *group-committed*: callers hand :meth:`Store.write` a function
of a :class:`Tx`; one writer thread runs every function queued meanwhile
inside one transaction, each in its own savepoint (a failing one is rolled
back alone and its caller gets the error), commits once, then answers them
all. Many shards writing at once thus share one commit instead of queueing
on a lock for one commit each. ``synchronous=NORMAL`` is enough here: the
journal (``synchronous=FULL``) is the truth and the cursor commits with the
facts, so a lost tail is replayed.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import orjson

from lawhub_actors.adapters.outbound_schema import OUTBOUND_SCHEMA
from lawhub_actors.adapters.sqlite_common import STOP, Readers, connect, take_batch
from lawhub_actors.core.status import DeliveryState, Status, StatusError, merge, merge_all
from lawhub_actors.core.status import parse as parse_status

log = logging.getLogger("lawhub.store")
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    tenant TEXT NOT NULL,
    customer TEXT NOT NULL,
    kind TEXT NOT NULL,                 -- lead | client
    consent TEXT NOT NULL,              -- unknown | granted | opted_out
    created_at REAL NOT NULL,
    last_inbound_at REAL,
    key_id TEXT,
    profile BLOB,                       -- sealed {"name": ...}
    PRIMARY KEY (tenant, customer)
);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    customer TEXT NOT NULL,
    conv_seq INTEGER NOT NULL,
    direction TEXT NOT NULL,            -- in | out
    wamid TEXT,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    status_error TEXT,                  -- Meta's error of a failed outbound message (JSON)
    created_at REAL NOT NULL,
    sent_at INTEGER,
    journal_seq INTEGER,
    key_id TEXT NOT NULL,
    content BLOB NOT NULL,              -- sealed {"text", "media", "details", ...}
    UNIQUE (tenant, wamid),
    UNIQUE (tenant, customer, conv_seq)
);
CREATE TABLE IF NOT EXISTS statuses (
    tenant TEXT NOT NULL,
    wamid TEXT NOT NULL,
    status TEXT NOT NULL,
    at INTEGER NOT NULL,
    received_at REAL NOT NULL,
    key_id TEXT NOT NULL,
    raw BLOB NOT NULL,                  -- sealed status with errors and pricing (billing)
    PRIMARY KEY (tenant, wamid, status)
);
CREATE TABLE IF NOT EXISTS events (
    tenant TEXT NOT NULL,
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    at REAL NOT NULL,
    key_id TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (tenant, seq)
);
CREATE TABLE IF NOT EXISTS tenant_seq (tenant TEXT PRIMARY KEY, last INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    source TEXT PRIMARY KEY,            -- idempotency key of what caused it
    tenant TEXT NOT NULL,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    key_id TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    journal_seq INTEGER,
    phone_number_id TEXT,
    reason TEXT NOT NULL,
    key_id TEXT NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (journal_seq, phone_number_id, reason, id)
);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS media (
    tenant TEXT NOT NULL,
    message_id TEXT NOT NULL,
    verdict TEXT NOT NULL,              -- clean | infected | refused | unavailable
    reason TEXT,                        -- signature, refusal or unavailability reason
    shelf TEXT,                         -- clean | quarantine: where the sealed file is kept
    ref TEXT UNIQUE,                    -- the file's name on its shelf, if one was kept
    mime_type TEXT,                     -- the sniffed type of the kept bytes
    size INTEGER,
    scanner TEXT NOT NULL,              -- clamd | builtin
    at REAL NOT NULL,
    PRIMARY KEY (tenant, message_id)
);
"""

OPERATORS = "_operators"
"""The key space of what belongs to no tenant (quarantined webhook data)."""


class Sealer(Protocol):
    def seal(self, tenant: str, plaintext: bytes, aad: bytes = b"") -> Any: ...

    def open(self, tenant: str, key_id: str, blob: bytes, aad: bytes = b"") -> bytes: ...


@dataclass(frozen=True, slots=True)
class FeedEvent:
    tenant: str
    seq: int
    type: str
    at: float
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """The outcome of one inbound media file's checks."""

    verdict: str
    reason: str | None
    shelf: str | None
    ref: str | None
    mime_type: str | None
    size: int | None
    scanner: str


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str
    customer: str
    conv_seq: int
    direction: str
    wamid: str | None
    type: str
    status: str
    created_at: float
    content: dict[str, Any]
    media: MediaRecord | None = None
    """The outcome of an inbound media file's checks, once known."""


@dataclass(frozen=True, slots=True)
class Customer:
    tenant: str
    customer: str
    kind: str
    consent: str
    last_inbound_at: float | None


class Tx:
    """One write transaction: the operations a shard composes."""

    def __init__(self, conn: sqlite3.Connection, sealer: Sealer, now: float) -> None:
        self.conn = conn
        self._sealer = sealer
        self.now = now
        self.events: list[FeedEvent] = []

    def seal(self, tenant: str, value: Any, aad: str) -> tuple[str, bytes]:
        sealed = self._sealer.seal(tenant, orjson.dumps(value), aad.encode())
        return sealed.key_id, sealed.blob

    def customer(self, tenant: str, customer: str) -> Customer | None:
        row = self.conn.execute(
            "SELECT kind, consent, last_inbound_at FROM customers WHERE tenant=? AND customer=?",
            (tenant, customer),
        ).fetchone()
        return None if row is None else Customer(tenant, customer, row[0], row[1], row[2])

    def add_lead(self, tenant: str, customer: str, profile_name: str | None) -> None:
        key_id, blob = self.seal(tenant, {"name": profile_name}, f"customer:{tenant}:{customer}")
        self.conn.execute(
            "INSERT INTO customers (tenant, customer, kind, consent, created_at, key_id, profile)"
            " VALUES (?, ?, 'lead', 'unknown', ?, ?, ?)",
            (tenant, customer, self.now, key_id, blob),
        )

    def touch_window(self, tenant: str, customer: str, at: float) -> None:
        self.conn.execute(
            "UPDATE customers SET last_inbound_at = MAX(COALESCE(last_inbound_at, 0), ?)"
            " WHERE tenant=? AND customer=?",
            (at, tenant, customer),
        )

    def set_consent(self, tenant: str, customer: str, consent: str) -> None:
        self.conn.execute(
            "UPDATE customers SET consent=? WHERE tenant=? AND customer=?",
            (consent, tenant, customer),
        )

    def insert_message(
        self, tenant: str, customer: str, *, direction: str, wamid: str | None, type_: str,
        status: str, content: dict[str, Any], sent_at: int | None, journal_seq: int | None,
    ) -> str | None:
        """Our id for the new message; ``None`` when ``wamid`` is already stored."""
        if wamid is not None and self.message_id(tenant, wamid) is not None:
            return None
        message_id = uuid.uuid4().hex
        (last,) = self.conn.execute(
            "SELECT COALESCE(MAX(conv_seq), 0) FROM messages WHERE tenant=? AND customer=?",
            (tenant, customer),
        ).fetchone()
        key_id, blob = self.seal(tenant, content, f"message:{tenant}:{message_id}")
        self.conn.execute(
            "INSERT INTO messages (id, tenant, customer, conv_seq, direction, wamid, type, status,"
            " created_at, sent_at, journal_seq, key_id, content)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (message_id, tenant, customer, last + 1, direction, wamid, type_, status, self.now,
             sent_at, journal_seq, key_id, blob),
        )
        return message_id

    def message_id(self, tenant: str, wamid: str) -> str | None:
        row = self.conn.execute(
            "SELECT id FROM messages WHERE tenant=? AND wamid=?", (tenant, wamid)
        ).fetchone()
        return None if row is None else str(row[0])

    def insert_status(self, tenant: str, wamid: str, status: str, at: int, raw: Any) -> bool:
        """Whether this (wamid, status) is new."""
        key_id, blob = self.seal(tenant, raw, f"status:{tenant}:{wamid}:{status}")
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO statuses (tenant, wamid, status, at, received_at, key_id, raw)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (tenant, wamid, status, at, self.now, key_id, blob),
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
            (tenant, wamid),
        ).fetchone()
        if row is None:
            return None
        message_id, status, error = row
        current = DeliveryState(Status(status), _error_from(error))
        merged, changed = merge(current, incoming)
        if changed:
            self._set_state(message_id, merged)
        return message_id, merged

    def attach_wamid(self, tenant: str, message_id: str, wamid: str) -> DeliveryState:
        """Record Meta's id of one of our messages, and apply every status
        that arrived before it was known."""
        row = self.conn.execute(
            "SELECT status, status_error FROM messages WHERE id=? AND tenant=?",
            (message_id, tenant),
        ).fetchone()
        if row is None:
            raise KeyError(message_id)
        self.conn.execute("UPDATE messages SET wamid=? WHERE id=?", (wamid, message_id))
        parked = [
            state_from_status(self._open(tenant, key_id, raw, f"status:{tenant}:{wamid}:{status}"))
            for status, key_id, raw in self.conn.execute(
                "SELECT status, key_id, raw FROM statuses WHERE tenant=? AND wamid=?",
                (tenant, wamid),
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

    def _open(self, tenant: str, key_id: str, blob: bytes, aad: str) -> Any:
        return orjson.loads(self._sealer.open(tenant, key_id, blob, aad.encode()))

    def message_content(self, tenant: str, message_id: str) -> dict[str, Any] | None:
        """A message's sealed content, opened."""
        row = self.conn.execute(
            "SELECT key_id, content FROM messages WHERE tenant=? AND id=?", (tenant, message_id)
        ).fetchone()
        if row is None:
            return None
        aad = f"message:{tenant}:{message_id}"
        content: dict[str, Any] = self._open(tenant, row[0], row[1], aad)
        return content

    def audit(self, source: str, tenant: str, kind: str, subject: str, data: Any) -> bool:
        """Whether the entry is new (``source`` makes replays no-ops)."""
        key_id, blob = self.seal(tenant, data, f"audit:{source}")
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO audit (source, tenant, at, kind, subject, key_id, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (source, tenant, self.now, kind, subject, key_id, blob),
        )
        return cursor.rowcount == 1

    def record_media(self, tenant: str, message_id: str, media: MediaRecord) -> bool:
        """Whether this is the message's first media outcome (replays: no-op)."""
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO media (tenant, message_id, verdict, reason, shelf, ref,"
            " mime_type, size, scanner, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

    def emit(self, tenant: str, type_: str, data: dict[str, Any]) -> FeedEvent:
        (seq,) = self.conn.execute(
            "INSERT INTO tenant_seq (tenant, last) VALUES (?, 1)"
            " ON CONFLICT (tenant) DO UPDATE SET last = last + 1 RETURNING last",
            (tenant,),
        ).fetchone()
        key_id, blob = self.seal(tenant, data, f"event:{tenant}:{seq}")
        self.conn.execute(
            "INSERT INTO events (tenant, seq, type, at, key_id, data) VALUES (?, ?, ?, ?, ?, ?)",
            (tenant, seq, type_, self.now, key_id, blob),
        )
        event = FeedEvent(tenant, int(seq), type_, self.now, data)
        self.events.append(event)
        return event

    def quarantine(self, journal_seq: int | None, phone_number_id: str | None, reason: str,
                   data: Any) -> None:
        entry_id = uuid.uuid5(
            uuid.NAMESPACE_URL, f"{journal_seq}:{phone_number_id}:{reason}:{orjson.dumps(data)!r}"
        ).hex
        key_id, blob = self.seal(OPERATORS, data, f"quarantine:{entry_id}")
        self.conn.execute(
            "INSERT OR IGNORE INTO quarantine (id, at, journal_seq, phone_number_id, reason,"
            " key_id, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (entry_id, self.now, journal_seq, phone_number_id, reason, key_id, blob),
        )

    def set_cursor(self, name: str, seq: int) -> None:
        self.conn.execute(
            "INSERT INTO cursors (name, seq) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET seq = MAX(seq, excluded.seq)",
            (name, seq),
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



@dataclass(frozen=True, slots=True)
class Written(Generic[T]):
    """What a write function returned, and the feed events it emitted."""

    value: T
    events: list[FeedEvent]


_BATCH_MAX = 256


class Store:
    def __init__(self, path: Path, sealer: Sealer, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._sealer = sealer
        self._clock = clock
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = connect(path, synchronous="NORMAL")
        self._writer.executescript(_SCHEMA + OUTBOUND_SCHEMA)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._readers = Readers(path, synchronous="NORMAL")
        self.commits = 0
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def write(self, work: Callable[[Tx], T]) -> Written[T]:
        """Run ``work`` atomically and durably (committed when this returns);
        raises what ``work`` raised, having undone all of its effects."""
        future: Future[Written[T]] = Future()
        self._queue.put((work, future))
        return future.result()

    def _run(self) -> None:
        while (batch := take_batch(self._queue, _BATCH_MAX)) is not None:
            self._commit(batch)

    def _commit(self, batch: list[tuple[Callable[[Tx], Any], Future[Any]]]) -> None:
        conn = self._writer
        answers: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            now = self._clock()
            for work, future in batch:
                tx = Tx(conn, self._sealer, now)
                conn.execute("SAVEPOINT work")
                try:
                    value = work(tx)
                except BaseException as error:  # noqa: BLE001 - the caller's error, handed back
                    conn.execute("ROLLBACK TO work")
                    conn.execute("RELEASE work")
                    answers.append((future, None, error))
                else:
                    conn.execute("RELEASE work")
                    answers.append((future, Written(value, tx.events), None))
            conn.execute("COMMIT")
        except Exception as error:  # noqa: BLE001 - nothing committed: every caller hears it
            log.error("store commit failed", extra={"error": repr(error), "batch": len(batch)})
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for _, future in batch:
                future.set_exception(error)
            return
        self.commits += 1
        for future, value, failure in answers:
            if failure is None:
                future.set_result(value)
            else:
                future.set_exception(failure)

    # -- reads -----------------------------------------------------------------

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on this thread's read connection (WAL: a consistent
        snapshot that never blocks the writer)."""
        return work(self._readers.get())

    def read_tx(self, work: Callable[[Tx], T]) -> T:
        """Run the reads of a :class:`Tx` function on this thread's read
        connection, off the writer (it must not write)."""
        return work(Tx(self._readers.get(), self._sealer, self._clock()))

    def _open(self, tenant: str, key_id: str, blob: bytes, aad: str) -> Any:
        return orjson.loads(self._sealer.open(tenant, key_id, blob, aad.encode()))

    def cursor(self, name: str) -> int:
        query = "SELECT seq FROM cursors WHERE name=?"
        row = self._readers.get().execute(query, (name,)).fetchone()
        return 0 if row is None else int(row[0])

    def customer(self, tenant: str, customer: str) -> Customer | None:
        row = self._readers.get().execute(
            "SELECT kind, consent, last_inbound_at FROM customers WHERE tenant=? AND customer=?",
            (tenant, customer),
        ).fetchone()
        return None if row is None else Customer(tenant, customer, row[0], row[1], row[2])

    def events_after(self, tenant: str, since: int, limit: int = 500) -> list[FeedEvent]:
        rows = self._readers.get().execute(
            "SELECT seq, type, at, key_id, data FROM events WHERE tenant=? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (tenant, since, limit),
        ).fetchall()
        return [
            FeedEvent(
                tenant, seq, type_, at, self._open(tenant, key_id, data, f"event:{tenant}:{seq}")
            )
            for seq, type_, at, key_id, data in rows
        ]

    def conversation(
        self, tenant: str, customer: str, *, limit: int = 50, before: int | None = None
    ) -> list[StoredMessage]:
        """The customer's messages, both directions, oldest first; ``before``
        pages back by conversation position."""
        rows = self._readers.get().execute(
            "SELECT m.id, m.conv_seq, m.direction, m.wamid, m.type, m.status, m.created_at,"
            " m.key_id, m.content, x.verdict, x.reason, x.shelf, x.ref, x.mime_type, x.size,"
            " x.scanner FROM messages m LEFT JOIN media x"
            " ON x.tenant = m.tenant AND x.message_id = m.id"
            " WHERE m.tenant=? AND m.customer=? AND m.conv_seq < ?"
            " ORDER BY m.conv_seq DESC LIMIT ?",
            (tenant, customer, before if before is not None else 2**62, limit),
        ).fetchall()
        return [
            StoredMessage(
                message_id, customer, conv_seq, direction, wamid, type_, status, created_at,
                self._open(tenant, key_id, content, f"message:{tenant}:{message_id}"),
                None if media[0] is None else MediaRecord(*media),
            )
            for message_id, conv_seq, direction, wamid, type_, status, created_at, key_id, content,
            *media in reversed(rows)
        ]

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._readers.get().execute(
            "SELECT id, at, journal_seq, phone_number_id, reason, key_id, data FROM quarantine"
            " ORDER BY at DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {"id": entry_id, "at": at, "journal_seq": journal_seq,
             "phone_number_id": phone_number_id, "reason": reason,
             "data": self._open(OPERATORS, key_id, data, f"quarantine:{entry_id}")}
            for entry_id, at, journal_seq, phone_number_id, reason, key_id, data in rows
        ]

    def audited_entries(self, tenant: str, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        """The tenant's audit entries of one kind, newest first, decrypted."""
        rows = self._readers.get().execute(
            "SELECT source, at, subject, key_id, data FROM audit WHERE tenant=? AND kind=?"
            " ORDER BY at DESC, rowid DESC LIMIT ?",
            (tenant, kind, limit),
        ).fetchall()
        return [
            {"at": at, "subject": subject,
             "data": self._open(tenant, key_id, data, f"audit:{source}")}
            for source, at, subject, key_id, data in rows
        ]

    def media(self, tenant: str, ref: str) -> MediaRecord | None:
        """The tenant's media outcome whose file is ``ref`` (another tenant's: None)."""
        row = self._readers.get().execute(
            "SELECT verdict, reason, shelf, ref, mime_type, size, scanner FROM media"
            " WHERE tenant=? AND ref=?",
            (tenant, ref),
        ).fetchone()
        return None if row is None else MediaRecord(*row)

    def quarantined_media(self, limit: int = 100) -> list[dict[str, Any]]:
        """Media that did not pass, newest first (no content: ids and reasons)."""
        rows = self._readers.get().execute(
            "SELECT tenant, message_id, verdict, reason, ref, mime_type, size, scanner, at"
            " FROM media WHERE verdict != 'clean' ORDER BY at DESC LIMIT ?",
            (limit,),
        ).fetchall()
        keys = ("tenant", "message_id", "verdict", "reason", "ref", "mime_type", "size",
                "scanner", "at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def operator_counts(self) -> dict[str, int]:
        """What waits for operators: dead letters, and quarantined webhook
        entries plus media that is not clean."""
        dlq, quarantined = self._readers.get().execute(
            "SELECT (SELECT COUNT(*) FROM dlq),"
            " (SELECT COUNT(*) FROM quarantine)"
            " + (SELECT COUNT(*) FROM media WHERE verdict != 'clean')"
        ).fetchone()
        return {"dlq": int(dlq), "quarantine": int(quarantined)}

    def count(self, table: str, **where: str) -> int:
        """Rows of ``table`` matching ``where`` (for operators and tests)."""
        if table not in {"customers", "messages", "statuses", "events", "audit", "quarantine",
                         "media", "outbound"}:
            raise ValueError(f"unknown table {table!r}")
        if not all(column.isidentifier() for column in where):
            raise ValueError("column names must be identifiers")
        clause = " AND ".join(f"{column}=?" for column in where) or "1=1"
        query = f"SELECT COUNT(*) FROM {table} WHERE {clause}"  # noqa: S608 - names checked above
        return int(self._readers.get().execute(query, tuple(where.values())).fetchone()[0])

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(STOP)
            self._thread.join(10)
            self._writer.close()
        self._readers.close()
