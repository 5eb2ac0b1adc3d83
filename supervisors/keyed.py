"""Keyed children: one actor per key, started on its first message,
passivated after an idle time, started again on the next message.

A send to the keyed supervisor's path with ``key=k`` queues the message in
the mailbox of ``<path>/<k>`` (created on demand). If no actor serves that
mailbox, the router asks the supervisor to start one; the message is
already queued, so it is handled by the new actor, in order.

Passivation is race-free because the actor detaches from its mailbox only
when the mailbox is empty, atomically with senders: a message either
arrives before (and the actor stays) or after (and its sender asks for a
new start). Children are ``transient``: a crash restarts them, passivation
(a normal exit) does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote, unquote

from supervisors.actor import Actor
from supervisors.child import Child
from supervisors.control import ChildExited, EnsureStarted
from supervisors.mailbox import MailboxClosed
from supervisors.pykka_seam import Envelope
from supervisors.registry import Registry, join
from supervisors.spec import ChildSpec, MailboxSpec, Restart, SupervisorFlags
from supervisors.supervisor import Supervisor


def child_id_for(key: str) -> str:
    """A key as a child id: no '/' (it would read as a deeper path)."""
    return quote(key, safe="")


class KeyedRouter:
    def __init__(self, registry: Registry, path: str, template: ChildSpec) -> None:
        self._registry = registry
        self._path = path
        self._template = template

    def put(
        self, envelope: Envelope[Any], key: str | None, *, wait: bool = True, bounded: bool = True
    ) -> None:
        if key is None:
            raise ValueError("a keyed supervisor needs a key for every message")
        path = join(self._path, child_id_for(key))
        while True:
            node = self._registry.find(path) or self._registry.ensure(
                path, self._template.kind, self._template.mailbox
            )
            try:
                serving = node.mailbox.put(envelope, wait=wait, bounded=bounded)
            except MailboxClosed:
                continue  # retired between lookup and put: resolve again
            break
        if not serving:
            self._registry.tell_node(self._path, EnsureStarted(key))

    def put_batch(
        self, items: Sequence[tuple[str, Any]], wrap: Callable[[list[Any]], Any]
    ) -> None:
        """One ``wrap(items of that key)`` per key (each key is its own child)."""
        groups: dict[str, list[Any]] = {}
        for key, item in items:
            groups.setdefault(key, []).append(item)
        for key, group in groups.items():
            self.put(Envelope(wrap(group)), key, bounded=False)

    def describe(self) -> dict[str, Any]:
        return {"routing": "keyed", "idle_s": self._template.passivate_after_s}


class KeyedSupervisor(Supervisor):
    """Starts ``factory(key)`` for each key on demand; ``template`` gives the
    children's mailbox, shutdown and passivation settings."""

    def __init__(
        self, factory: Callable[[str], Actor], template: ChildSpec, flags: SupervisorFlags
    ) -> None:
        super().__init__(flags)
        self._factory = factory
        self._template = template

    def on_start(self) -> None:
        super().on_start()
        registry = self.context.registry
        registry.get(self.context.path).router = KeyedRouter(
            registry, self.context.path, self._template
        )
        # Messages that arrived while this supervisor was restarting.
        prefix = self.context.path + "/"
        for node in registry.nodes():
            child_id = node.path.removeprefix(prefix)
            if node.path.startswith(prefix) and "/" not in child_id and node.mailbox.depth():
                self._ensure(unquote(child_id))

    def receive(self, message: Any) -> Any:
        if isinstance(message, EnsureStarted):
            return self._ensure(message.key)
        return super().receive(message)

    def _ensure(self, key: str) -> None:
        child_id = child_id_for(key)
        if child_id in self._children:
            return
        self._add_and_start(self._spec_for(key))

    def _spec_for(self, key: str) -> ChildSpec:
        factory = self._factory
        template = self._template
        return ChildSpec(
            id=child_id_for(key),
            factory=lambda: factory(key),
            restart=Restart.TRANSIENT,
            shutdown_s=template.shutdown_s,
            mailbox=template.mailbox,
            message_retries=template.message_retries,
            kind=template.kind,
            passivate_after_s=template.passivate_after_s,
        )

    def _on_final_exit(self, child: Child, exited: ChildExited) -> None:
        child.stop_cell(drain=False)
        del self._children[child.spec.id]
        if not self.context.registry.retire(child.node.path):
            # A message arrived as the actor passivated: serve it.
            self._add_and_start(self._spec_for(unquote(child.spec.id)))


def keyed_spec(
    id: str,
    factory: Callable[[str], Actor],
    *,
    idle_s: float,
    mailbox: MailboxSpec | None = None,
    shutdown_s: float = 5.0,
    flags: SupervisorFlags | None = None,
    kind: str = "keyed-worker",
) -> ChildSpec:
    """A child spec running a :class:`KeyedSupervisor`."""
    template = ChildSpec(
        id="template",
        factory=lambda: factory(""),
        shutdown_s=shutdown_s,
        mailbox=mailbox or MailboxSpec(),
        kind=kind,
        passivate_after_s=idle_s,
    )
    keyed_flags = flags or SupervisorFlags()
    return ChildSpec(
        id=id,
        factory=lambda: KeyedSupervisor(factory, template, keyed_flags),
        mailbox=MailboxSpec(capacity=None),
        message_retries=0,
        shutdown_s=shutdown_s + 1.0,
        kind="keyed",
    )
