"""Names to mailboxes, resolved on every send.

Callers address ``inbound/sessions/firm-a`` and never hold an actor ref, so
nothing they hold goes stale when an actor restarts: the name's mailbox is
the same before and after, and a message sent while the actor restarts
waits in it for the new incarnation. A name that is not registered (never
was, or was removed for good) raises :class:`NotRegistered` to the sender,
which still holds its message.

A node may carry a *router* (pools, keyed supervisors): a send to the
node's path then goes through it to one of the children.

The registry also keeps what operators see of each node (kind, state,
restarts), so a snapshot of the tree never has to ask a busy actor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import pykka

from supervisors.errors import NotRegistered
from supervisors.intensity import RecentRestarts
from supervisors.mailbox import DeadLetterHook, Mailbox, MailboxClosed
from supervisors.pykka_seam import Envelope
from supervisors.spec import MailboxSpec

log = logging.getLogger("supervisors.registry")


class Router(Protocol):
    """Puts an envelope into one child's mailbox, chosen by ``key``."""

    def put(
        self, envelope: Envelope[Any], key: str | None, *, wait: bool = True, bounded: bool = True
    ) -> None: ...

    def put_batch(
        self, items: Sequence[tuple[str, Any]], wrap: Callable[[list[Any]], Any]
    ) -> None:
        """Put keyed ``items``, ``wrap``-ped as few messages as the routing
        allows, each key's in the order given, past the bound."""

    def describe(self) -> dict[str, Any]: ...


class NodeState(StrEnum):
    """Where a node's actor is in its life, as operators see it."""

    STARTING = "starting"
    RUNNING = "running"
    EXITED = "exited"
    """Its actor ended; its supervisor decides what next."""
    RESTARTING = "restarting"
    """Waiting for its restart (its own crash or a sibling's, or a failed start)."""
    STOPPED = "stopped"


NODE_MOVES: dict[NodeState, frozenset[NodeState]] = {
    NodeState.STARTING: frozenset({NodeState.STARTING, NodeState.RUNNING,
                                   NodeState.RESTARTING, NodeState.STOPPED}),
    NodeState.RUNNING: frozenset({NodeState.EXITED, NodeState.RESTARTING, NodeState.STOPPED}),
    NodeState.EXITED: frozenset({NodeState.RESTARTING, NodeState.STOPPED}),
    NodeState.RESTARTING: frozenset({NodeState.STARTING, NodeState.RESTARTING,
                                     NodeState.STOPPED}),
    NodeState.STOPPED: frozenset({NodeState.STARTING, NodeState.STOPPED}),
}
"""From each state, those a node may move to (:meth:`Node.move`)."""


class IllegalNodeMove(RuntimeError):
    """A move :data:`NODE_MOVES` does not allow: a bug in a supervisor."""


@dataclass(eq=False)
class Node:
    """One named place in the tree, as operators see it."""

    path: str
    kind: str
    mailbox: Mailbox
    order: int = 0
    state: NodeState = NodeState.STARTING
    restarts: RecentRestarts = field(default_factory=RecentRestarts)
    period_s: float = 10.0
    router: Router | None = None
    details: dict[str, Any] = field(default_factory=dict)
    """What the node's owner wants operators to see (a supervisor's flags)."""
    fault_armed: bool = False
    """The actor crashes on its next message instead of handling it (a rehearsal)."""

    def move(self, new: NodeState) -> None:
        if new not in NODE_MOVES[self.state]:
            raise IllegalNodeMove(f"{self.path or 'root'}: {self.state} -> {new}")
        self.state = new


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def join(parent: str, child_id: str) -> str:
    return f"{parent}/{child_id}" if parent else child_id


class Registry:
    def __init__(self, dead_letter: DeadLetterHook | None = None) -> None:
        self._nodes: dict[str, Node] = {}
        self._lock = threading.Lock()
        self._order = 0
        self.dead_letters = 0
        self._dead_letter_hook = dead_letter

    # -- owners (supervisors) ------------------------------------------------

    def ensure(self, path: str, kind: str, spec: MailboxSpec) -> Node:
        """The node at ``path``, created if absent; an existing node keeps its
        mailbox (and queued messages) and adopts the new bounds."""
        with self._lock:
            node = self._nodes.get(path)
            if node is None or node.mailbox.closed:
                self._order += 1
                node = Node(path, kind, Mailbox(path, spec, self.dead_letter), self._order)
                self._nodes[path] = node
            else:
                node.kind = kind
                if node.mailbox.spec != spec:
                    node.mailbox.retune(spec)
            return node

    def remove(self, path: str, reason: str) -> None:
        """Forget ``path`` for good: queued asks fail, queued tells are dead letters."""
        with self._lock:
            node = self._nodes.pop(path, None)
        if node is not None:
            node.mailbox.close(reason)

    def remove_subtree(self, path: str, reason: str) -> None:
        prefix = path + "/"
        with self._lock:
            paths = [p for p in self._nodes if p == path or p.startswith(prefix)]
        for found in sorted(paths, reverse=True):
            self.remove(found, reason)

    def retire(self, path: str) -> bool:
        """Remove ``path`` only if its mailbox is empty and unconsumed."""
        with self._lock:
            node = self._nodes.get(path)
            if node is None:
                return True
            if not node.mailbox.close_if_idle():
                return False
            del self._nodes[path]
            return True

    # -- senders -----------------------------------------------------------------

    def find(self, path: str) -> Node | None:
        return self._nodes.get(path)

    def get(self, path: str) -> Node:
        node = self._nodes.get(path)
        if node is None:
            raise NotRegistered(path)
        return node

    def tell(
        self, path: str, message: Any, key: str | None = None, *, wait: bool = True,
        bounded: bool = True,
    ) -> None:
        """Send without waiting for an answer. Raises ``NotRegistered`` or
        ``MailboxFull``; ``wait=False`` never blocks on a full mailbox;
        ``bounded=False`` ignores the bound (see :meth:`Mailbox.put`): an
        acknowledgement must never wait behind the work it acknowledges, or
        two bounded mailboxes that feed each other can deadlock."""
        self._put(path, Envelope(message), key, wait, bounded)

    def tell_batch(
        self, path: str, items: Sequence[tuple[str, Any]], wrap: Callable[[list[Any]], Any]
    ) -> None:
        """Send keyed ``items`` as few messages as the routing allows: a pool
        groups them by the worker each key goes to *now* (under the lock its
        resizes take, so no key's order can straddle a resize) and sends each
        worker one ``wrap(items of that worker)``, in the order given.

        The bound does not apply: this is for a sender that bounds the work
        it has handed out itself (a window), never for open-ended traffic."""
        node = self._nodes.get(path)
        if node is None:
            raise NotRegistered(path)
        if node.router is not None:
            node.router.put_batch(items, wrap)
            return
        try:
            node.mailbox.put(Envelope(wrap([item for _, item in items])), bounded=False)
        except MailboxClosed:
            raise NotRegistered(path) from None

    def send(
        self, path: str, envelope: Envelope[Any], key: str | None = None, *, wait: bool = True
    ) -> None:
        """Queue a ready envelope (e.g. one whose ``reply_to`` is a future of
        the caller's own kind)."""
        self._put(path, envelope, key, wait, True)

    def ask_future(
        self, path: str, message: Any, key: str | None = None
    ) -> pykka.Future[Any]:
        future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        self._put(path, Envelope(message, reply_to=future), key, True, True)
        return future

    def ask(self, path: str, message: Any, *, timeout: float, key: str | None = None) -> Any:
        """Send and wait up to ``timeout`` seconds for the answer (every ask
        has a timeout; pykka does not cancel a timed-out ask)."""
        return self.ask_future(path, message, key).get(timeout=timeout)

    def tell_node(self, path: str, message: Any) -> None:
        """Send to the node's own actor, bypassing its router (e.g. to tell a
        pool's supervisor to resize rather than one of its workers)."""
        try:
            self.get(path).mailbox.put(Envelope(message))
        except MailboxClosed:
            raise NotRegistered(path) from None

    def ask_node(self, path: str, message: Any, *, timeout: float) -> Any:
        future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        try:
            self.get(path).mailbox.put(Envelope(message, reply_to=future))
        except MailboxClosed:
            raise NotRegistered(path) from None
        return future.get(timeout=timeout)

    def _put(
        self, path: str, envelope: Envelope[Any], key: str | None, wait: bool, bounded: bool
    ) -> None:
        node = self._nodes.get(path)
        if node is None:
            raise NotRegistered(path)
        if node.router is not None:
            node.router.put(envelope, key, wait=wait, bounded=bounded)
            return
        try:
            node.mailbox.put(envelope, wait=wait, bounded=bounded)
        except MailboxClosed:
            raise NotRegistered(path) from None

    # -- observation -----------------------------------------------------------------

    def nodes(self) -> list[Node]:
        with self._lock:
            return list(self._nodes.values())

    def close_all(self, reason: str) -> None:
        with self._lock:
            nodes = list(self._nodes.values())
            self._nodes.clear()
        for node in nodes:
            node.mailbox.close(reason)

    def inject_fault(self, path: str) -> None:
        """Make the actor at ``path`` crash on its next message, as if its
        handler raised: the usual restart, retry and reports follow. Raises
        ``NotRegistered`` for an unknown path."""
        self.get(path).fault_armed = True

    def dead_letter(self, path: str, message: Any, reason: str) -> None:
        """Record a message nobody will handle (and pass it to the hook)."""
        self.dead_letters += 1
        log.warning(
            "dead letter", extra={"path": path, "message_type": type(message).__name__,
                                  "reason": reason},
        )
        if self._dead_letter_hook is not None:
            self._dead_letter_hook(path, message, reason)

