"""The thread that keeps this node's partition leases.

Every ``lease_s / 3`` it heartbeats, renews what it holds, reads every
lease and which nodes are alive, and follows
:func:`~lawhub_actors.core.partitions.plan`: takes what it should (each
take raises the partition's epoch) and gives up what another node needs.
When what it holds changes, :class:`~lawhub_actors.adapters.leases.Ownership`
is updated and ``on_change`` is called (the dispatcher then reads again
from the cursors of what it holds, and the outbound side takes up the
unfinished sends of what it took).

A tick that fails (the database away) is tried again at the next; once
nothing could be renewed for ``lease_s``, every partition is counted lost
(others may hold them by now: fencing refuses this node's writes anyway,
this only stops it from trying). :meth:`LeaseKeeper.stop` releases every
partition and removes the node, so the others take over at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from lawhub_actors.adapters import leases
from lawhub_actors.adapters.leases import Held, Ownership
from lawhub_actors.adapters.store import Store
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.partitions import plan

log = structlog.get_logger("lawhub.leases")

TICKS_PER_LEASE = 3


class LeaseKeeper:
    def __init__(self, store: Store, ownership: Ownership, *, address: str, lease_s: float,
                 on_change: Callable[[Held], None] | None = None,
                 on_tick: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """``on_tick``: called after every round on the keeper's thread
        (the runtime sweeps for sends other nodes accepted)."""
        self._store = store
        self._ownership = ownership
        self._address = address
        self._lease_s = lease_s
        self.on_change = on_change
        self._on_tick = on_tick
        self._clock = clock
        self._started_at = clock()
        self._renewed_at = self._started_at
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0

    def start(self) -> None:
        """Make the partitions' rows if needed, take a first share (before
        anything reads the journal), then keep the leases on a thread."""
        self._store.write(
            lambda tx: leases.ensure_partitions(tx, self._ownership.partitions))
        self.tick()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._lease_s / TICKS_PER_LEASE):
            try:
                self.tick()
                self._failures = 0
                if self._on_tick is not None:
                    self._on_tick()
            except Exception as error:  # noqa: BLE001 - the database away: try at the next tick
                self._failures += 1
                if self._failures == 1:
                    log.warning("lease_tick_failed", error=repr(error))
                if self._clock() - self._renewed_at > self._lease_s:
                    self._changed({})

    def tick(self) -> Held:
        """One round: heartbeat, renew, rebalance. What this node holds now."""
        node, held = self._ownership.node, self._ownership.held()
        now = self._clock()
        until = now + self._lease_s

        def renew(tx: Tx) -> dict[int, int]:
            leases.heartbeat(tx, node, self._address, self._started_at, now)
            return leases.renew(tx, held, until)

        kept = self._store.apart(renew)
        self._renewed_at = now
        if lost := set(held.epochs) - set(kept):
            log.warning("partitions_lost", node=node, partitions=sorted(lost))
        live = self._store.read(leases.live_nodes, now - self._lease_s)
        decided = plan(node, self._store.read(leases.read_leases), live, now, kept)
        epochs = dict(kept)
        if decided.take:
            def take(tx: Tx) -> dict[int, int]:
                return {lease.partition: epoch for lease in decided.take
                        if (epoch := leases.take(tx, node, lease, now, until)) is not None}
            epochs.update(self._store.apart(take))
        if decided.give_up:
            current = Held(node, held.partitions, epochs)
            self._store.apart(leases.release, current, decided.give_up)
            for partition in decided.give_up:
                epochs.pop(partition, None)
        return self._changed(epochs)

    def _changed(self, epochs: dict[int, int]) -> Held:
        if self._ownership.set(epochs):
            held = self._ownership.held()
            log.info("partitions_held", node=held.node, count=len(held.epochs))
            if self.on_change is not None:
                self.on_change(held)
        return self._ownership.held()

    def stop(self) -> None:
        """Release every partition and leave (after the actors stopped)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)
        held = self._ownership.held()

        def leave(tx: Tx) -> None:
            leases.release(tx, held, list(held.epochs))
            leases.leave(tx, held.node)

        try:
            self._store.apart(leave)
        except Exception as error:  # noqa: BLE001 - the others take over when the leases run out
            log.warning("partitions_not_released", error=repr(error))
        self._ownership.set({})
