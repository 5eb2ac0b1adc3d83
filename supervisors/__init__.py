"""A supervision runtime on pykka, in the spirit of Erlang/OTP's supervisor.

pykka gives threads, mailboxes and futures; this package adds what keeps a
system of actors alive:

- **Actors are restarted, not resurrected.** An :class:`Actor` is a plain
  object; a *cell* (one pykka thread) runs it. When it raises — in a
  ``tell``, an ``ask``, ``on_start``, even a ``BaseException`` — the cell
  reports one :class:`~supervisors.control.ChildExited` to its supervisor,
  which rebuilds the actor from its :class:`ChildSpec` factory.
- **Mailboxes belong to names.** Callers send to a path
  (``inbound/sessions/firm-a``) through the :class:`Registry`; the mailbox at
  that path outlives each incarnation, so messages queued behind a crash
  are handled by the next one and nobody holds a stale reference.
- **Supervisors decide.** Restart types (:class:`Restart`), strategies
  (:class:`Strategy`), restart intensity with escalation, backoff with
  jitter: see :mod:`supervisors.supervisor`.
- **Bounded everything.** Mailboxes are bounded with an explicit overflow
  policy; threads are bounded by the tree's shape (one per actor, one timer
  per tree), never by traffic.
- **Order where it matters.** Consistent-hash :func:`pool_spec` pools keep
  per-key order, even while they are resized.

Nothing here knows what the actors do.
"""

from supervisors.actor import Actor, Context
from supervisors.errors import MailboxFull, NotRegistered, StartFailed
from supervisors.keyed import keyed_spec
from supervisors.pool import Routing, pool_spec
from supervisors.registry import NodeState, Registry
from supervisors.snapshot import NodeSnapshot
from supervisors.spec import (
    Backoff,
    ChildSpec,
    MailboxSpec,
    Overflow,
    Restart,
    Strategy,
    SupervisorFlags,
)
from supervisors.supervisor import supervisor_spec
from supervisors.tree import Tree

# What an application needs to build, run and address a tree, and the errors
# a sender meets. The rest is importable from its module: every error from
# supervisors.errors, the control messages (Resize, StartChild, WhichChildren,
# Adopt, ...) from supervisors.control.
__all__ = [
    "Actor",
    "Backoff",
    "ChildSpec",
    "Context",
    "MailboxFull",
    "MailboxSpec",
    "NodeSnapshot",
    "NodeState",
    "NotRegistered",
    "Overflow",
    "Registry",
    "Restart",
    "Routing",
    "StartFailed",
    "Strategy",
    "SupervisorFlags",
    "Tree",
    "keyed_spec",
    "pool_spec",
    "supervisor_spec",
]
