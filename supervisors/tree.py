"""A running supervision tree: root supervisor, registry and timer thread.

The root has no supervisor above it. When it gives up (its own restart
intensity exceeded, or a child escalated to it), the tree ends: every actor
is stopped and ``on_give_up`` is called with the reason, so the hosting
process can log it and exit non-zero for systemd or Kubernetes to restart.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pykka

from supervisors.actor import Runtime
from supervisors.cell import Cell
from supervisors.control import AdoptReport, ChildExited, Pending, Start, Stop
from supervisors.errors import InvalidSpec, StartFailed
from supervisors.mailbox import DeadLetterHook
from supervisors.pykka_seam import Envelope
from supervisors.registry import NodeState, Registry
from supervisors.snapshot import NodeSnapshot, take
from supervisors.spec import ChildSpec
from supervisors.strategy import ExitKind
from supervisors.timer import Scheduler

log = logging.getLogger("supervisors.tree")

ROOT = ""
"""The root supervisor's path; its children are at ``<id>``."""


class Tree:
    def __init__(
        self,
        root: ChildSpec,
        *,
        clock: Callable[[], float] = time.monotonic,
        uniform: Callable[[], float] = random.random,
        on_give_up: Callable[[BaseException | None], None] | None = None,
        dead_letter: DeadLetterHook | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        root.check()
        self._spec = root
        self._on_give_up = on_give_up
        self._start_timeout_s = start_timeout_s
        self.registry = Registry(dead_letter)
        self._scheduler = Scheduler()
        self.runtime = Runtime(self.registry, self._scheduler, clock, uniform)
        self.gave_up = threading.Event()
        self.give_up_reason: BaseException | None = None
        self._ref: pykka.ActorRef[Cell] | None = None
        self._stop_lock = threading.Lock()

    def start(self) -> Tree:
        node = self.registry.ensure(ROOT, self._spec.kind, self._spec.mailbox)
        node.move(NodeState.STARTING)
        self._ref = Cell.start(self._spec, node, self.runtime, self._root_exited)
        try:
            self._control(Start(), self._start_timeout_s)
        except (StartFailed, pykka.Timeout):
            self.stop()
            raise
        node.move(NodeState.RUNNING)
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every actor (children before parents, each draining within its
        shutdown time), then the timer; idempotent."""
        with self._stop_lock:
            ref, self._ref = self._ref, None
            if ref is not None and ref.is_alive():
                try:
                    thread = self._control(Stop(ref.actor_urn), timeout_s)
                    if isinstance(thread, threading.Thread):
                        thread.join(timeout_s)
                except pykka.Timeout:
                    log.error("root did not stop within %ss", timeout_s)
            node = self.registry.find(ROOT)
            if node is not None:
                node.move(NodeState.STOPPED)
            self._scheduler.stop()
            self.registry.close_all("tree stopped")

    def adopt(self, root: ChildSpec, timeout_s: float = 30.0) -> list[str]:
        """Take a new version of the root spec while running (see
        :meth:`Supervisor.adopt`), waiting up to ``timeout_s`` in all for
        every supervisor's answer: the paths that could not adopt, each with
        why (one still restarting is told and adopts when it runs again)."""
        root.check()
        if root.adopt is None:
            raise InvalidSpec("the root spec must be a supervisor's")
        self._spec = root
        deadline = time.monotonic() + timeout_s
        future: pykka.ThreadingFuture[object] = pykka.ThreadingFuture()
        self.registry.get(ROOT).mailbox.put(Envelope(root.adopt, reply_to=future))
        problems: list[str] = []
        waiting: list[Pending] = [("root", future)]
        while waiting:
            path, answer = waiting.pop(0)
            try:
                report = answer.get(timeout=max(deadline - time.monotonic(), 0.0))
            except pykka.Timeout:
                problems.append(f"{path}: no answer within {timeout_s}s"
                                " (told: it adopts when it runs again)")
                continue
            except Exception as error:  # noqa: BLE001 - its mailbox closed: stopping for good
                problems.append(f"{path}: {error!r}")
                continue
            if isinstance(report, AdoptReport):
                problems += report.problems
                waiting += report.pending
        return problems

    def snapshot(self) -> NodeSnapshot:
        return take(self.registry, self.runtime.clock())

    def tell(self, path: str, message: Any, key: str | None = None) -> None:
        self.registry.tell(path, message, key)

    def ask(self, path: str, message: Any, *, timeout: float, key: str | None = None) -> Any:
        return self.registry.ask(path, message, timeout=timeout, key=key)

    def _control(self, message: object, timeout_s: float) -> Any:
        future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        self.registry.get(ROOT).mailbox.put_system(Envelope(message, reply_to=future))
        return future.get(timeout=timeout_s)

    def _root_exited(self, exited: ChildExited) -> None:
        """Runs on the root's thread when the root supervisor itself exits."""
        if exited.kind is ExitKind.NORMAL:
            log.info("root supervisor stopped")
        else:
            log.critical(
                "root supervisor gave up; the tree ends", extra={"reason": repr(exited.error)}
            )
        self.give_up_reason = exited.error
        self.gave_up.set()
        threading.Thread(target=self._end, name="supervisors-give-up", daemon=True).start()

    def _end(self) -> None:
        self.stop()
        if self._on_give_up is not None:
            self._on_give_up(self.give_up_reason)
