"""Partition leases in the store, and fencing.

Each partition (:mod:`lawhub_actors.core.partitions`) has one row: its
owner, its epoch (raised by one at every change of owner), when its lease
runs out, and its cursor (every journal entry at or below it has been
processed for the partition). Nodes heartbeat in ``nodes``.

**Fencing.** A write made for a partition first calls :func:`fence` in its
transaction: it reads the partition's row *and keeps it locked for share*
(PostgreSQL; SQLite has a single writer) until the commit, and raises
:class:`Fenced` unless this node still owns it at the epoch it took it
with. Taking a partition over updates that row, so it waits for every write
the old owner has in flight, and every write the old owner tries afterwards
— after a GC pause, a SIGSTOP, a lost network — is refused. Leases decide
who *should* work; fencing makes sure no one else *can* write.

Lease times are the nodes' clocks: a skewed clock moves a takeover earlier
or later, never lets two owners write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from lawhub_actors.adapters.sql import Connection
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.partitions import Lease, partition_of

T = TypeVar("T")

LEGACY_CURSOR = "dispatcher"
"""The single cursor of the store before partitions (it seeds theirs)."""


class Fenced(Exception):
    """This node does not own the partition (any more) at the epoch it had:
    the write is refused; the partition's owner does the work."""


class PartitionsChanged(Exception):
    """``[cluster] partitions`` differs from the number the database has."""


@dataclass(frozen=True, slots=True)
class Held:
    """The partitions this node holds, at their epochs."""

    node: str
    partitions: int
    epochs: Mapping[int, int]


class Ownership:
    """This node's view of its leases, shared by the actors that write for
    partitions (any thread). Changed by the lease keeper alone."""

    def __init__(self, node: str, partitions: int) -> None:
        self.node = node
        self.partitions = partitions
        self._epochs: dict[int, int] = {}
        self._lock = threading.Lock()

    def held(self) -> Held:
        with self._lock:
            return Held(self.node, self.partitions, dict(self._epochs))

    def epoch_of(self, partition: int) -> int | None:
        with self._lock:
            return self._epochs.get(partition)

    def set(self, epochs: Mapping[int, int]) -> bool:
        """Now holding ``epochs``; whether anything changed."""
        with self._lock:
            changed = dict(epochs) != self._epochs
            self._epochs = dict(epochs)
            return changed

    def of(self, tenant: str, key: str) -> int:
        """The partition of the conversation ``(tenant, key)``."""
        return partition_of(tenant, key, self.partitions)


def fence(tx: Tx, ownership: Ownership, partition: int, epoch: int | None = None) -> int:
    """Go on only if this node still owns ``partition`` at ``epoch`` (default:
    the epoch it holds it at now), and keep it so until the commit: that
    epoch. Else raise :class:`Fenced`. Work handed out under an epoch is
    fenced by *that* epoch: a node that lost a partition and took it back
    must not do what it handed out before (its new reading of the partition
    does it again, in order)."""
    epoch = ownership.epoch_of(partition) if epoch is None else epoch
    if epoch is None:
        raise Fenced(f"partition {partition} is not this node's")
    if (partition, epoch) in tx.held:  # an earlier work of this commit holds it locked
        return epoch
    row = tx.conn.execute(
        "SELECT epoch FROM partitions WHERE id=? AND owner=? AND epoch=?"  # noqa: S608
        + tx.row_lock,
        (partition, ownership.node, epoch)).fetchone()
    if row is None:
        raise Fenced(f"partition {partition} was taken over (epoch {epoch} is past)")
    tx.held.add((partition, epoch))
    return epoch


def fenced(ownership: Ownership, tenant: str, key: str, work: Callable[[Tx], T],
           epoch: int | None = None) -> Callable[[Tx], T]:
    """``work`` for the conversation ``(tenant, key)``, fenced by its partition
    (at ``epoch``: the one it was handed out under)."""
    partition = ownership.of(tenant, key)

    def run(tx: Tx) -> T:
        fence(tx, ownership, partition, epoch)
        return work(tx)

    return run


def ensure_partitions(tx: Tx, partitions: int) -> None:
    """Make the partitions' rows the first time (their cursors start at the
    old single cursor); refuse another number than the database has. Nodes
    starting together on a new database make them once (the second waits
    for the first's commit, then finds them there)."""
    tx.conn.execute("INSERT INTO store_meta (key, value) VALUES ('partitions', ?)"
                    " ON CONFLICT DO NOTHING", (str(partitions),))
    (made,) = tx.conn.execute("SELECT value FROM store_meta WHERE key='partitions'").fetchone()
    if int(made) != partitions:
        raise PartitionsChanged(
            f"[cluster] partitions is {partitions}, but this database has {made}: "
            "the number is fixed once a database has data")
    legacy = tx.conn.execute("SELECT seq FROM cursors WHERE name=?", (LEGACY_CURSOR,)).fetchone()
    start = 0 if legacy is None else int(legacy[0])
    tx.conn.executemany(
        "INSERT INTO partitions (id, owner, epoch, lease_until, cursor) VALUES (?, NULL, 0, 0, ?)"
        " ON CONFLICT DO NOTHING", [(partition, start) for partition in range(partitions)])


def heartbeat(tx: Tx, node: str, address: str, started_at: float, now: float) -> None:
    tx.conn.execute(
        "INSERT INTO nodes (id, address, started_at, heartbeat_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET address = excluded.address,"
        " heartbeat_at = excluded.heartbeat_at",
        (node, address, started_at, now))


def leave(tx: Tx, node: str) -> None:
    """The node is going: its row goes (its partitions are released apart)."""
    tx.conn.execute("DELETE FROM nodes WHERE id=?", (node,))


def live_nodes(conn: Connection, since: float) -> list[str]:
    return [str(row[0]) for row in conn.execute(
        "SELECT id FROM nodes WHERE heartbeat_at > ? ORDER BY id", (since,))]


@dataclass(frozen=True, slots=True)
class NodeRow:
    id: str
    address: str
    started_at: float
    heartbeat_at: float


def nodes(conn: Connection) -> list[NodeRow]:
    return [NodeRow(str(i), str(a), float(s), float(h)) for i, a, s, h in conn.execute(
        "SELECT id, address, started_at, heartbeat_at FROM nodes ORDER BY id")]


def read_leases(conn: Connection) -> list[Lease]:
    return [Lease(int(p), None if owner is None else str(owner), int(epoch), float(until))
            for p, owner, epoch, until in conn.execute(
                "SELECT id, owner, epoch, lease_until FROM partitions ORDER BY id")]


def renew(tx: Tx, held: Held, until: float) -> dict[int, int]:
    """Extend every lease this node still holds at its epoch; what it holds."""
    kept: dict[int, int] = {}
    for partition, epoch in held.epochs.items():
        cursor = tx.conn.execute(
            "UPDATE partitions SET lease_until=? WHERE id=? AND owner=? AND epoch=?",
            (until, partition, held.node, epoch))
        if cursor.rowcount == 1:
            kept[partition] = epoch
    return kept


def take(tx: Tx, node: str, lease: Lease, now: float, until: float) -> int | None:
    """Take ``lease``'s partition if it is still as read (no one took it
    meanwhile) and free at ``now``: the new epoch, or ``None``."""
    cursor = tx.conn.execute(
        "UPDATE partitions SET owner=?, epoch=epoch + 1, lease_until=? WHERE id=? AND epoch=?"
        " AND (owner IS NULL OR lease_until <= ? OR owner = ?)",
        (node, until, lease.partition, lease.epoch, now, node))
    return lease.epoch + 1 if cursor.rowcount == 1 else None


def release(tx: Tx, held: Held, partitions: Sequence[int]) -> None:
    """Give ``partitions`` up (free at once: no one waits for the lease)."""
    for partition in partitions:
        epoch = held.epochs.get(partition)
        if epoch is not None:
            tx.conn.execute(
                "UPDATE partitions SET owner=NULL, lease_until=0 WHERE id=? AND owner=?"
                " AND epoch=?", (partition, held.node, epoch))


def cursors(conn: Connection, partitions: Sequence[int] | None = None) -> dict[int, int]:
    """The cursors of ``partitions`` (``None``: of every partition)."""
    every = {int(p): int(c) for p, c in conn.execute("SELECT id, cursor FROM partitions")}
    return every if partitions is None else {p: every[p] for p in partitions if p in every}


def processed_upto(conn: Connection) -> int:
    """Every journal entry at or below this is processed, in every partition."""
    row = conn.execute("SELECT MIN(cursor) FROM partitions").fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def advance(tx: Tx, held: Held, done: int) -> None:
    """Every journal entry up to ``done`` is processed for every partition
    held: their cursors move up to it (never down), fenced by epoch."""
    tx.conn.executemany(
        "UPDATE partitions SET cursor=? WHERE id=? AND owner=? AND epoch=? AND cursor < ?",
        [(done, partition, held.node, epoch, done) for partition, epoch in held.epochs.items()])
