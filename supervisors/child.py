"""A supervisor's child: its spec, its node, and the cell that runs it.

The supervisor decides; a :class:`Child` does what is decided to its own
cell, over the cell's system lane (which no user message can hold up):
start an incarnation, terminate it for a restart (the cell and its mailbox
stay), or stop the cell for good within the child's ``shutdown_s``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pykka

from supervisors.cell import Cell
from supervisors.control import Stop, Terminate
from supervisors.mailbox import MailboxClosed
from supervisors.pykka_seam import Envelope
from supervisors.registry import Node, NodeState
from supervisors.spec import ChildSpec

log = logging.getLogger("supervisors.supervisor")


@dataclass(eq=False)
class Child:
    spec: ChildSpec
    node: Node
    ref: pykka.ActorRef[Cell] | None = None
    incarnation: int = 0

    def control(self, message: object, timeout_s: float) -> Any:
        """Send a control message on the system lane and wait for its answer."""
        future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        self.node.mailbox.put_system(Envelope(message, reply_to=future))
        return future.get(timeout=timeout_s)

    def terminate(self) -> None:
        """Stop the child's actor for a restart; its cell and mailbox stay."""
        self.node.move(NodeState.RESTARTING)
        if self.ref is None or not self.ref.is_alive():
            return
        try:
            self.control(Terminate(), self.spec.shutdown_s)
        except pykka.Timeout:
            log.warning("child did not terminate in time", extra={"path": self.node.path})

    def stop_cell(self, *, drain: bool) -> None:
        """Stop the cell's thread: orderly (after what is queued) within the
        child's ``shutdown_s``, else at once; then wait for the thread."""
        ref, self.ref = self.ref, None
        self.node.move(NodeState.STOPPED)
        if ref is None or not ref.is_alive():
            return
        stop = Stop(ref.actor_urn)
        thread = None
        if drain and self.node.mailbox.is_serving():  # a crashed actor cannot drain
            thread = self._send_stop(stop, lane="user")
        if thread is None:
            thread = self._send_stop(stop, lane="system")
        if thread is None:
            log.error("child did not stop; thread abandoned", extra={"path": self.node.path})
            return
        thread.join(self.spec.shutdown_s)

    def _send_stop(self, stop: Stop, *, lane: str) -> Any:
        future: pykka.ThreadingFuture[Any] = pykka.ThreadingFuture()
        envelope = Envelope(stop, reply_to=future)
        mailbox = self.node.mailbox
        try:
            if lane == "user":
                mailbox.put_marker(envelope)
            else:
                mailbox.put_system(envelope)
            return future.get(timeout=max(self.spec.shutdown_s, 0.001))
        except (pykka.Timeout, MailboxClosed):
            return None
