"""Pools: N identical workers under one supervisor, behind a router.

A send to the pool's path goes to one worker: in turn (``round_robin``), or
by consistent hash of a key (``hash``), so that all messages with the same
key reach the same worker and are handled in the order they were sent.

Resizing live keeps that promise. With jump consistent hashing, growing
moves keys only onto the new workers and shrinking only off the removed
ones. Under the router's lock the pool switches to the new worker list and
puts, in the same instant,

- a :class:`Barrier` behind everything already queued at every worker that
  loses keys, and
- a :class:`Hold` at the tail of every worker that may gain keys.

A worker that gains a key therefore handles nothing sent after the switch
until every worker that lost keys has handled everything sent before it.
Senders never wait for a resize; removed workers are stopped once drained.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from supervisors.control import (
    AdoptPool,
    AdoptReport,
    Barrier,
    Countdown,
    Hold,
    HoldToken,
    Resize,
)
from supervisors.errors import InvalidSpec, MailboxFull, NotRegistered
from supervisors.mailbox import Mailbox
from supervisors.pykka_seam import Envelope
from supervisors.routing import RoundRobin, consistent_index
from supervisors.spec import ChildSpec, MailboxSpec, Overflow, Restart, SupervisorFlags
from supervisors.supervisor import Supervisor


class Routing(enum.StrEnum):
    """``round_robin``: each worker in turn. ``hash``: by the message's key
    (jump consistent hash), so one key's messages go to one worker in order.
    ``least_busy``: the worker with the fewest messages queued or in hand,
    ties in turn, so one slow message holds up no other while a worker is
    idle (for independent, uneven work)."""

    ROUND_ROBIN = "round_robin"
    HASH = "hash"
    LEAST_BUSY = "least_busy"


class PoolRouter:
    """Picks a worker's mailbox and queues there, atomically with resizes."""

    def __init__(self, routing: Routing) -> None:
        self.routing = routing
        self.lock = threading.Lock()
        self.workers: list[Mailbox] = []
        self.target_size: int | None = None
        """Size after the last resize: a restarted pool comes back at this size."""
        self._turn = RoundRobin()

    def put(
        self, envelope: Envelope[Any], key: str | None, *, wait: bool = True, bounded: bool = True
    ) -> None:
        if self.routing is Routing.HASH and key is None:
            raise ValueError("a consistent-hash pool needs a key for every message")
        deadline: float | None = None
        while True:
            with self.lock:
                mailbox = self._choose(key)
                if not bounded:
                    mailbox.put_marker(envelope)
                    return
                if mailbox.offer(envelope):
                    return
            # Full: wait for room outside the lock, then route again.
            spec = mailbox.spec
            if spec.overflow is Overflow.REFUSE or not wait:
                raise MailboxFull(f"{mailbox.path}: {spec.capacity} messages queued")
            if deadline is None:
                deadline = time.monotonic() + spec.block_timeout_s
            if not mailbox.wait_for_room(deadline):
                raise mailbox.still_full()

    def put_batch(
        self, items: Sequence[tuple[str, Any]], wrap: Callable[[list[Any]], Any]
    ) -> None:
        """One ``wrap(items)`` per worker, grouped by where each key goes now
        (hash routing; otherwise the whole batch to one worker), ignoring the
        bound: the sender bounds what it has handed out."""
        with self.lock:
            if self.routing is not Routing.HASH:
                self._choose(None).put_marker(Envelope(wrap([item for _, item in items])))
                return
            groups: dict[int, tuple[Mailbox, list[Any]]] = {}
            for key, item in items:
                mailbox = self._choose(key)
                groups.setdefault(id(mailbox), (mailbox, []))[1].append(item)
            for mailbox, group in groups.values():
                mailbox.put_marker(Envelope(wrap(group)))

    def _choose(self, key: str | None) -> Mailbox:
        """The mailbox a message with ``key`` goes to now (under the lock)."""
        workers = self.workers
        if not workers:
            raise NotRegistered("pool has no workers")
        if key is not None and self.routing is Routing.HASH:
            return workers[consistent_index(key, len(workers))]
        if self.routing is Routing.LEAST_BUSY:
            return _least_busy(workers, self._turn.index(len(workers)))
        return workers[self._turn.index(len(workers))]

    def describe(self) -> dict[str, Any]:
        return {"routing": str(self.routing), "size": len(self.workers)}


def _least_busy(workers: list[Mailbox], start: int) -> Mailbox:
    count = len(workers)
    return min((workers[(start + i) % count] for i in range(count)), key=Mailbox.load)


class _Retired:
    """Sent by the resize countdown: these workers are drained, stop them."""

    def __init__(self, child_ids: list[str], owner: int) -> None:
        self.child_ids = child_ids
        self.owner = owner


class Pool(Supervisor):
    """Supervises ``size`` copies of ``worker`` (ids ``0..size-1``)."""

    def __init__(
        self, worker: ChildSpec, size: int, routing: Routing, flags: SupervisorFlags
    ) -> None:
        if size < 1:
            raise InvalidSpec("a pool needs at least one worker")
        self._worker = worker
        self._routing = routing
        super().__init__(flags, [replace(worker, id=str(i)) for i in range(size)])
        self._size = size
        self._shrinking = False
        self._wanted: int | None = None

    def on_start(self) -> None:
        """A restarted pool comes back at the size it ran at (its spec may
        say otherwise after an adoption: the queued ``AdoptPool`` then
        resizes it, keeping per-key order, as any resize does)."""
        node = self.context.registry.get(self.context.path)
        router = node.router if isinstance(node.router, PoolRouter) else PoolRouter(self._routing)
        if router.target_size is not None and router.target_size != self._size:
            self._size = router.target_size
            self._initial = [replace(self._worker, id=str(i)) for i in range(self._size)]
        router.target_size = self._size
        super().on_start()
        with router.lock:
            router.workers = [c.node.mailbox for c in self._children.values()]
        node.router = router
        prefix = self.context.path + "/"
        for stale in self.context.registry.nodes():  # workers of a larger past size
            child_id = stale.path.removeprefix(prefix)
            mine = stale.path.startswith(prefix) and "/" not in child_id
            if mine and child_id not in self._children:
                self.context.registry.remove(stale.path, "pool restarted smaller")

    def receive(self, message: Any) -> Any:
        if isinstance(message, Resize):
            return self._resize(message.size)
        if isinstance(message, AdoptPool):
            return self._adopt_pool(message)
        if isinstance(message, _Retired):
            if message.owner == self._owner:
                self._retire(message.child_ids)
            return None
        return super().receive(message)

    @property
    def router(self) -> PoolRouter:
        router = self.context.registry.get(self.context.path).router
        assert isinstance(router, PoolRouter)
        return router

    def _resize(self, size: int) -> int:
        if size < 1:
            raise InvalidSpec("a pool needs at least one worker")
        if self._shrinking:
            self._wanted = size  # applied once the running shrink has drained
            return self._size
        if size > self._size:
            self._grow(size)
        elif size < self._size:
            self._shrink(size)
        self.router.target_size = size
        return self._size

    def _adopt_pool(self, new: AdoptPool) -> AdoptReport:
        """New flags and worker spec (running workers keep running: their
        mailbox bounds change now, the rest at their next start), then the size."""
        try:
            new.flags.check()
            new.worker.check()
        except InvalidSpec as error:
            return AdoptReport((f"{self.context.path}: {error}",))
        self.retune(new.flags)
        self._worker = new.worker
        for child_id, child in self._children.items():
            child.spec = replace(new.worker, id=child_id)
            if child.node.mailbox.spec != new.worker.mailbox:
                child.node.mailbox.retune(new.worker.mailbox)
        self._resize(new.size)
        return AdoptReport()

    def _grow(self, size: int) -> None:
        added = [
            self._add_and_start(replace(self._worker, id=str(i))) for i in range(self._size, size)
        ]
        router = self.router
        with router.lock:
            old = router.workers
            if self._routing is Routing.HASH:
                hold = HoldToken()
                countdown = Countdown(len(old), hold.release)
                for mailbox in old:
                    mailbox.put_marker(Envelope(Barrier(countdown)))
                for child in added:
                    child.node.mailbox.put_marker(Envelope(Hold(hold)))
            router.workers = old + [child.node.mailbox for child in added]
        self._size = size

    def _shrink(self, size: int) -> None:
        router = self.router
        removed_ids = [str(i) for i in range(size, self._size)]
        mailbox = self.context.registry.get(self.context.path).mailbox
        owner = self._owner
        hold = HoldToken()

        def drained() -> None:
            hold.release()
            mailbox.put(Envelope(_Retired(removed_ids, owner)))

        with router.lock:
            remaining, removed = router.workers[:size], router.workers[size:]
            countdown = Countdown(len(removed), drained)
            for worker in removed:
                worker.put_marker(Envelope(Barrier(countdown)))
            if self._routing is Routing.HASH:
                for worker in remaining:
                    worker.put_marker(Envelope(Hold(hold)))
            router.workers = remaining
        self._size = size
        self._shrinking = True

    def _retire(self, child_ids: list[str]) -> None:
        for child_id in reversed(child_ids):
            child = self._children.get(child_id)
            if child is not None:
                self._stop_for_good(child, "pool shrunk")
        self._shrinking = False
        wanted, self._wanted = self._wanted, None
        if wanted is not None:
            self._resize(wanted)


def pool_spec(
    id: str,
    worker: ChildSpec,
    size: int,
    *,
    routing: Routing = Routing.HASH,
    flags: SupervisorFlags | None = None,
    restart: Restart = Restart.PERMANENT,
) -> ChildSpec:
    """A child spec that runs a :class:`Pool` of ``size`` workers."""
    pool_flags = flags or SupervisorFlags()
    return ChildSpec(
        id=id,
        factory=lambda: Pool(worker, size, routing, pool_flags),
        restart=restart,
        shutdown_s=1.0 + worker.shutdown_s * size,
        mailbox=MailboxSpec(capacity=None),
        message_retries=0,
        kind="pool",
        adopt=AdoptPool(pool_flags, worker, size),
    )
