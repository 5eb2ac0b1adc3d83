"""The supervisor: an actor that starts, watches and restarts its children.

Lifecycle, as in OTP's ``supervisor``:

- **start**: children start one after another, in spec order; ``Start`` is
  synchronous, so a child is running before the next one starts. If one
  fails to start, those already started are stopped and the supervisor's
  own start fails (its parent sees a start failure).
- **exit of a child**: every exit path of a child arrives as one
  :class:`ChildExited`. The restart type decides whether it restarts
  (:func:`should_restart`); the strategy decides which siblings go with it
  (:func:`plan`): those are terminated in reverse start order, then all but
  temporary siblings (which are forgotten, as in OTP) are started again in
  order after a backoff delay, by the supervisor messaging
  itself (``TryAgain``) so it stays responsive meanwhile. A restart that
  fails is retried the same way, with a longer delay.
- **intensity**: each restart is counted; more than ``max_restarts`` within
  ``period_s`` and the supervisor gives up: it stops every child and crashes
  itself with :class:`Escalation`, which its own supervisor handles like any
  crash of a child. A root that gives up ends the tree (see :class:`Tree`).
- **stop**: children stop in reverse start order, each given its
  ``shutdown_s`` to drain its mailbox before the rest is abandoned.
- **adopt** (a new version of the spec, while running): new flags at once;
  children no longer in the spec stop for good (draining, in reverse order);
  new ones start after the others; the rest keep running untouched — their
  mailbox bounds change at once, the rest of their spec at their next start,
  and a child supervisor adopts its own part the same way, recursively.

Children are restarted *in place*: the cell and its mailbox survive, only
the actor object is rebuilt, so messages queued behind a crash wait for the
new incarnation instead of being lost.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NoReturn

import pykka

from supervisors.actor import Actor
from supervisors.backoff import restart_delay
from supervisors.cell import Cell
from supervisors.child import Child
from supervisors.control import (
    Adopt,
    AdoptReport,
    ChildExited,
    Pending,
    Retune,
    Start,
    StartChild,
    StopChild,
    TryAgain,
    WhichChildren,
)
from supervisors.errors import Escalation, InvalidSpec, NoSuchChild, NotRegistered, StartFailed
from supervisors.intensity import RestartIntensity
from supervisors.mailbox import MailboxClosed
from supervisors.pykka_seam import Envelope
from supervisors.registry import NodeState, join
from supervisors.spec import ChildSpec, MailboxSpec, Restart, SupervisorFlags, check_children
from supervisors.strategy import plan, should_restart

log = logging.getLogger("supervisors.supervisor")

_owners = itertools.count(1)


class Supervisor(Actor):
    """Starts, watches and restarts its children (see the module's docstring).

    **For subclasses** (:class:`~supervisors.pool.Pool`,
    :class:`~supervisors.keyed.KeyedSupervisor`), a protected API, kept as
    it is:

    - ``_initial``: the specs :meth:`on_start` starts, in order (a subclass
      may replace them before calling it);
    - ``_children``: the running children by id, in start order (read it;
      change it only through the methods below);
    - ``_add_and_start(spec)``: add a child and start it now;
    - ``_stop_for_good(child, reason)``: stop a child, forget it and remove
      its subtree from the registry;
    - ``_on_final_exit(child, exited)``: what happens to a child that is not
      restarted (by default, :meth:`_stop_for_good`);
    - ``_owner``: this incarnation's token, for messages a subclass sends
      itself later (an old incarnation's must be ignored).
    """

    def __init__(self, flags: SupervisorFlags, children: Sequence[ChildSpec] = ()) -> None:
        flags.check()
        check_children(list(children))
        self.flags = flags
        self._initial = list(children)
        self._children: dict[str, Child] = {}  # insertion order is start order
        self._intensity = RestartIntensity(flags.max_restarts, flags.period_s)
        self._owner = next(_owners)

    # -- lifecycle -----------------------------------------------------------

    def on_start(self) -> None:
        self._publish_flags()
        try:
            for spec in self._initial:
                self._add_and_start(spec)
        except BaseException:
            self._stop_children(drain=False)
            raise

    def on_stop(self) -> None:
        self._stop_children(drain=True)

    def on_failure(self, error: BaseException) -> None:
        self._stop_children(drain=False)

    def receive(self, message: Any) -> Any:
        if isinstance(message, ChildExited):
            return self._on_child_exited(message)
        if isinstance(message, TryAgain):
            if message.owner == self._owner:
                self._try_again(message.child_ids)
            return None
        if isinstance(message, StartChild):
            return self._start_new(message.spec)
        if isinstance(message, StopChild):
            return self._stop_for_good(self._child(message.child_id), "removed by its supervisor")
        if isinstance(message, WhichChildren):
            return [(c.spec.id, c.node.state) for c in self._children.values()]
        if isinstance(message, Retune):
            return self.retune(message.flags)
        if isinstance(message, Adopt):
            return self.adopt(message.flags, message.children)
        return super().receive(message)

    def retune(self, flags: SupervisorFlags) -> None:
        flags.check()
        self.flags = flags
        self._intensity.retune(flags.max_restarts, flags.period_s)
        for child in self._children.values():
            child.node.period_s = flags.period_s
        self._publish_flags()

    def adopt(self, flags: SupervisorFlags, children: Sequence[ChildSpec]) -> AdoptReport:
        """Reconcile the running children with ``children`` (see the module
        docstring). Never blocks on a child and never crashes this
        supervisor: an invalid spec or a child that fails to start is a
        problem in the report."""
        try:
            check_children(list(children))
            flags.check()
        except InvalidSpec as error:
            return AdoptReport((f"{self.context.path or 'root'}: {error}",))
        self.retune(flags)
        wanted = {spec.id for spec in children}
        for child in reversed(list(self._children.values())):
            if child.spec.id not in wanted:
                self._stop_for_good(child, "left its supervisor's spec")
        problems: list[str] = []
        pending: list[Pending] = []
        for spec in children:
            running = self._children.get(spec.id)
            if running is not None:
                pending += self._adopt_child(running, spec)
                continue
            try:
                self._add_and_start(spec)
            except StartFailed as error:
                self._stop_for_good(self._children[spec.id], "failed to start")
                problems.append(f"{join(self.context.path, spec.id)}: {error}")
        return AdoptReport(tuple(problems), tuple(pending))

    def _adopt_child(self, child: Child, spec: ChildSpec) -> list[Pending]:
        """Record the child's new spec (its next start uses it), retune its
        mailbox, and queue ``spec.adopt`` for it: a running child handles it
        next, a restarting one once it runs again (its mailbox outlives it)."""
        child.spec = spec
        child.node.kind = spec.kind
        if child.node.mailbox.spec != spec.mailbox:
            child.node.mailbox.retune(spec.mailbox)
        if spec.adopt is None:
            return []
        future: pykka.ThreadingFuture[object] = pykka.ThreadingFuture()
        try:
            child.node.mailbox.put(Envelope(spec.adopt, reply_to=future))
        except MailboxClosed:
            return []  # stopping for good: nothing left to adopt
        return [(child.node.path, future)]

    def _publish_flags(self) -> None:
        self.context.registry.get(self.context.path).details = {
            "strategy": str(self.flags.strategy),
            "max_restarts": self.flags.max_restarts,
            "period_s": self.flags.period_s,
        }

    # -- starting ------------------------------------------------------------

    def _start_new(self, spec: ChildSpec) -> str:
        spec.check()
        if spec.id in self._children:
            raise InvalidSpec(f"{self.context.path}: child {spec.id!r} already exists")
        try:
            self._add_and_start(spec)
        except StartFailed:
            self._stop_for_good(self._children[spec.id], "failed to start")
            raise
        return self._children[spec.id].node.path

    def _add_and_start(self, spec: ChildSpec) -> Child:
        registry = self.context.registry
        node = registry.ensure(join(self.context.path, spec.id), spec.kind, spec.mailbox)
        node.period_s = self.flags.period_s
        child = Child(spec, node)
        self._children[spec.id] = child
        self._start_child(child)
        return child

    def _start_child(self, child: Child) -> None:
        if child.ref is None or not child.ref.is_alive():
            child.ref = Cell.start(child.spec, child.node, self.context.runtime, self._report)
        child.node.move(NodeState.STARTING)
        try:
            child.incarnation = child.control(Start(child.spec), self.flags.start_timeout_s)
        except pykka.Timeout:
            raise StartFailed(
                f"{child.node.path}: not started within {self.flags.start_timeout_s}s"
            ) from None
        child.node.move(NodeState.RUNNING)

    def _report(self, exited: ChildExited) -> None:
        """Runs on the child's thread: queue the report for this supervisor."""
        try:
            self.context.registry.get(self.context.path).mailbox.put(Envelope(exited))
        except (NotRegistered, MailboxClosed):
            log.warning("exit report without a supervisor", extra={"child": exited.child_id})

    # -- exits and restarts ------------------------------------------------------

    def _on_child_exited(self, exited: ChildExited) -> None:
        child = self._children.get(exited.child_id)
        if child is None or child.incarnation != exited.incarnation:
            return  # about an incarnation already replaced
        if child.node.state is not NodeState.RUNNING:
            return  # already being restarted by a sibling's plan
        child.node.move(NodeState.EXITED)
        if not should_restart(child.spec.restart, exited.kind):
            self._on_final_exit(child, exited)
            return
        self._restart(child, exited)

    def _on_final_exit(self, child: Child, exited: ChildExited) -> None:
        """A child that is not to be restarted: forget it."""
        self._stop_for_good(child, f"{exited.kind} exit of a {child.spec.restart} child")

    def _restart(self, child: Child, exited: ChildExited) -> None:
        now = self.context.runtime.clock()
        self._count_restart(child, now, exited.error)
        temporary = frozenset(
            child_id for child_id, sibling in self._children.items()
            if sibling.spec.restart is Restart.TEMPORARY
        )
        steps = plan(self.flags.strategy, list(self._children), child.spec.id, temporary)
        for sibling_id in steps.stop:
            sibling = self._children[sibling_id]
            if sibling_id in steps.start:
                sibling.terminate()
            else:
                self._stop_for_good(sibling, f"a temporary sibling of restarting {child.spec.id}")
        for child_id in steps.start:
            self._mark_restarting(self._children[child_id], now)
        self._start_after_backoff(child, steps.start, now)

    def _count_restart(self, offender: Child, now: float, error: BaseException | None) -> None:
        """Count a restart against the intensity; past it, give up."""
        if not self._intensity.add(now):
            self._give_up(offender, error)

    @staticmethod
    def _mark_restarting(child: Child, now: float) -> None:
        child.node.move(NodeState.RESTARTING)
        child.node.restarts.add(now)

    def _start_after_backoff(self, offender: Child, child_ids: tuple[str, ...],
                             now: float) -> None:
        """Start ``child_ids`` again after a backoff that grows with
        ``offender``'s recent restarts."""
        recent = offender.node.restarts.within(now, self.flags.period_s)
        delay_s = restart_delay(self.flags.backoff, recent - 1, self.context.runtime.uniform)
        self._schedule(child_ids, delay_s)

    def _schedule(self, child_ids: tuple[str, ...], delay_s: float) -> None:
        if delay_s <= 0:
            self._try_again(child_ids)
            return
        registry, path = self.context.registry, self.context.path
        mailbox = registry.get(path).mailbox
        again = TryAgain(child_ids, self._owner)

        def send() -> None:
            with contextlib.suppress(MailboxClosed):  # this supervisor is gone
                mailbox.put(Envelope(again))

        self.context.runtime.scheduler.call_later(delay_s, send)

    def _try_again(self, child_ids: tuple[str, ...]) -> None:
        for index, child_id in enumerate(child_ids):
            child = self._children.get(child_id)
            if child is None or child.node.state is not NodeState.RESTARTING:
                continue  # gone, or started meanwhile by another pending restart
            try:
                self._start_child(child)
            except StartFailed as error:
                log.error("restart failed", extra={"path": child.node.path, "error": repr(error)})
                now = self.context.runtime.clock()
                self._mark_restarting(child, now)
                self._count_restart(child, now, error)
                self._start_after_backoff(child, child_ids[index:], now)
                return

    def _give_up(self, offender: Child, error: BaseException | None) -> NoReturn:
        reason = (
            f"more than {self.flags.max_restarts} restarts within {self.flags.period_s}s; "
            f"last: {offender.spec.id}: {error!r}"
        )
        log.error(
            "supervisor gave up",
            extra={"supervisor": self.context.path or "root", "context": "shutdown",
                   "reason": reason, "offender": offender.node.path},
        )
        raise Escalation(f"{self.context.path or 'root'}: {reason}") from error

    # -- stopping --------------------------------------------------------------

    def _child(self, child_id: str) -> Child:
        child = self._children.get(child_id)
        if child is None:
            raise NoSuchChild(f"{self.context.path}: {child_id}")
        return child

    def _stop_children(self, *, drain: bool) -> None:
        for child in reversed(list(self._children.values())):
            child.stop_cell(drain=drain)

    def _stop_for_good(self, child: Child, reason: str) -> None:
        child.stop_cell(drain=True)
        self._children.pop(child.spec.id, None)
        self.context.registry.remove_subtree(child.node.path, reason)


def supervisor_spec(
    id: str,
    flags: SupervisorFlags,
    children: Sequence[ChildSpec] = (),
    *,
    restart: Restart = Restart.PERMANENT,
    shutdown_s: float | None = None,
) -> ChildSpec:
    """A child spec that runs a :class:`Supervisor`. Its mailbox is unbounded
    (exit reports must never be refused) and its shutdown time covers its
    children's."""
    specs = list(children)
    return ChildSpec(
        id=id,
        factory=lambda: Supervisor(flags, specs),
        restart=restart,
        shutdown_s=shutdown_s if shutdown_s is not None else 1.0 + sum(s.shutdown_s for s in specs),
        mailbox=MailboxSpec(capacity=None),
        message_retries=0,
        kind="supervisor",
        adopt=Adopt(flags, tuple(specs)),
    )


def with_id(spec: ChildSpec, child_id: str) -> ChildSpec:
    return replace(spec, id=child_id)
