"""The cell: a pykka ``ThreadingActor`` that runs one :class:`Actor` at a time.

pykka, left alone, stops an actor whose ``tell`` handler raises, silently
drops what was queued behind, and offers no restart. A cell instead:

- catches every failure of the actor it runs (a ``tell`` or an ``ask``
  handler, ``on_start``, the factory, any ``BaseException``), answers an
  asker with the error, pauses its mailbox and sends its supervisor one
  :class:`ChildExited` report;
- keeps its thread and its mailbox across restarts: the supervisor sends
  ``Start`` and a fresh actor from the factory picks up the queue where the
  failed one left it (Akka's actor cell does the same);
- hands a crashed ``tell`` again ``message_retries`` times, then
  dead-letters it, so one poisonous message cannot wedge its mailbox.

Control messages (``Start``, ``Terminate``, ``Stop``, ``IdleCheck``) come on
the mailbox's system lane and are handled by the cell itself.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import pykka

from supervisors.actor import Actor, Context, Runtime
from supervisors.control import (
    Barrier,
    ChildExited,
    Hold,
    IdleCheck,
    Start,
    Stop,
    Terminate,
)
from supervisors.errors import ActorCrashed, InjectedFault, StartFailed
from supervisors.mailbox import NO_ACTOR, InboxView, MailboxClosed
from supervisors.pykka_seam import ActorStop, Envelope, OwnLoop
from supervisors.registry import Node
from supervisors.spec import ChildSpec
from supervisors.strategy import ExitKind

log = logging.getLogger("supervisors.cell")

Report = Callable[[ChildExited], None]


class Cell(OwnLoop):
    use_daemon_thread = True  # a child stuck past its shutdown timeout must not block exit

    def __init__(self, spec: ChildSpec, node: Node, runtime: Runtime, report: Report) -> None:
        super().__init__()
        self._mailbox = node.mailbox
        self._node = node
        self.actor_inbox = InboxView(node.mailbox)
        self._actor_ref = pykka.ActorRef(self)
        self.path = node.path
        self._spec = spec
        self._runtime = runtime
        self._report = report
        self._actor: Actor | None = None
        self.incarnation = 0
        self.thread: threading.Thread | None = None
        self._retrying: Envelope[Any] | None = None
        self._attempts = 0
        self._last_activity = 0.0
        self._controls: dict[type, Callable[[Any], Any]] = {
            Start: self._start,
            Terminate: self._terminate,
            Stop: self._stop_cell,
            ActorStop: self._stop_cell,
            IdleCheck: self._idle_check,
            Hold: self._hold,
            Barrier: self._barrier,
        }

    def on_start(self) -> None:
        self.thread = threading.current_thread()

    def run_loop(self) -> None:
        """pykka's loop, minus its failure handling: failures are ours to report."""
        mailbox = self._mailbox
        controls = self._controls
        while not self.actor_stopped.is_set():
            envelope = mailbox.get()
            control = controls.get(type(envelope.message))
            if control is None:
                self._deliver(envelope)
                continue
            try:
                result = control(envelope.message)
            except Exception as error:
                if envelope.reply_to is None:
                    log.exception("control message failed", extra={"path": self.path})
                else:
                    self._reply_error(envelope, error)
            else:
                self._reply(envelope, result)

    # -- user messages ----------------------------------------------------------

    def _deliver(self, envelope: Envelope[Any]) -> None:
        actor = self._actor
        if actor is None:  # the mailbox is paused without an actor; keep the message
            self._mailbox.put_front(envelope)
            self._mailbox.pause(NO_ACTOR)
            return
        try:
            if self._node.fault_armed:  # an operator's rehearsal: crash on this message
                self._node.fault_armed = False
                raise InjectedFault(f"{self.path}: crash injected by an operator")
            result = actor.receive(envelope.message)
        except BaseException as error:  # noqa: BLE001 - every failure becomes a report
            self._crashed(envelope, error)
            return
        self._retrying = None
        self._reply(envelope, result)
        if self._spec.passivate_after_s is not None:
            self._last_activity = self._runtime.clock()
        if actor.context.stop_requested:
            self._exit(ExitKind.NORMAL)

    def _crashed(self, envelope: Envelope[Any], error: BaseException) -> None:
        if envelope.reply_to is not None:
            answer = error if isinstance(error, Exception) else ActorCrashed(repr(error))
            self._reply_error(envelope, answer)
        else:
            attempts = self._attempts + 1 if self._retrying is envelope else 1
            if attempts <= self._spec.message_retries:
                self._retrying, self._attempts = envelope, attempts
                self._mailbox.put_front(envelope)
            else:
                self._retrying = None
                self._runtime.registry.dead_letter(
                    self.path, envelope.message, f"handler crashed {attempts} times: {error!r}"
                )
        log.error(
            "actor crashed",
            exc_info=(type(error), error, error.__traceback__),
            extra={"path": self.path, "message_type": type(envelope.message).__name__},
        )
        actor = self._actor
        assert actor is not None
        self._actor = None
        self._mailbox.pause(NO_ACTOR)
        try:
            actor.on_failure(error)
        except Exception:
            log.exception("on_failure raised", extra={"path": self.path})
        self._report(ChildExited(self._spec.id, self.incarnation, ExitKind.CRASH, error))

    # A reply slot belongs to the asker; whatever it does (an asker whose loop
    # has closed, a future already answered) must not kill this thread.

    def _reply(self, envelope: Envelope[Any], value: Any) -> None:
        if envelope.reply_to is not None:
            try:
                envelope.reply_to.set(value)
            except Exception:  # noqa: BLE001 - the asker's problem, logged
                log.warning("reply could not be delivered", extra={"path": self.path})

    def _reply_error(self, envelope: Envelope[Any], error: Exception) -> None:
        if envelope.reply_to is not None:
            try:
                envelope.reply_to.set_exception(exc_info=(type(error), error, error.__traceback__))
            except Exception:  # noqa: BLE001 - the asker's problem, logged
                log.warning("error reply could not be delivered", extra={"path": self.path})

    # -- control -------------------------------------------------------------------

    def _start(self, start: Start) -> int:
        if self._actor is not None:
            return self.incarnation
        if start.spec is not None:
            self._spec = start.spec
        try:
            actor = self._spec.factory()
            actor.context = Context(self.path, self._runtime)
            actor.on_start()
        except BaseException as error:
            raise StartFailed(f"{self.path}: {error!r}") from error
        self._actor = actor
        self.incarnation += 1
        self._last_activity = self._runtime.clock()
        self._mailbox.resume(NO_ACTOR)
        if self._spec.passivate_after_s is not None:
            self._schedule_idle_check(self._spec.passivate_after_s)
        return self.incarnation

    def _terminate(self, _: object = None) -> None:
        actor, self._actor = self._actor, None
        self._mailbox.pause(NO_ACTOR)
        if actor is not None:
            try:
                actor.on_stop()
            except Exception:
                log.exception("on_stop raised", extra={"path": self.path})

    def _stop_cell(self, stop: object) -> threading.Thread | None:
        """Answers the thread, so the stopper can join it."""
        if isinstance(stop, Stop) and stop.target != self.actor_urn:
            return None  # meant for an earlier cell on this mailbox
        self._terminate()
        self._stop()  # pykka: unregister, mark stopped; the loop then ends
        return self.thread

    def _exit(self, kind: ExitKind) -> None:
        """The actor ended by itself (stop requested, or passivated)."""
        self._terminate()
        self._report(ChildExited(self._spec.id, self.incarnation, kind))

    def _idle_check(self, _: IdleCheck) -> None:
        idle_s = self._spec.passivate_after_s
        if self._actor is None or idle_s is None:
            return
        idle = self._runtime.clock() - self._last_activity
        if idle < idle_s:
            self._schedule_idle_check(idle_s - idle)
        elif self._mailbox.detach_if_empty():
            self._exit(ExitKind.NORMAL)
        else:
            self._schedule_idle_check(idle_s)

    def _schedule_idle_check(self, delay_s: float) -> None:
        mailbox = self._mailbox

        def check() -> None:
            with contextlib.suppress(MailboxClosed):  # the name was removed meanwhile
                mailbox.put_system(Envelope(IdleCheck()))

        self._runtime.scheduler.call_later(delay_s, check)

    def _hold(self, hold: Hold) -> None:
        mailbox, token = self._mailbox, hold.token
        mailbox.pause(token)
        if not token.on_release(lambda: mailbox.resume(token)):
            mailbox.resume(token)

    def _barrier(self, barrier: Barrier) -> None:
        barrier.countdown.arrive()
