"""A supervision runtime on pykka, in the spirit of Erlang/OTP's supervisor.

pykka gives threads, mailboxes and futures; this package adds what keeps a
system of actors alive:

- **Actors are restarted, not resurrected.** An :class:`Actor` is a plain
  object; a *cell* (one pykka thread) runs it. When it raises — in a
  ``tell``, an ``ask``, ``on_start``, even a ``BaseException`` — the cell
  reports one :class:`~supervisors.messages.ChildExited` to its supervisor,
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
from supervisors.errors import (
    ActorCrashed,
    Escalation,
    InjectedFault,
    InvalidSpec,
    MailboxFull,
    NoSuchChild,
    NotRegistered,
    StartFailed,
    SupervisorError,
)
from supervisors.keyed import keyed_spec
from supervisors.messages import (
    Adopt,
    AdoptPool,
    Resize,
    Retune,
    StartChild,
    StopChild,
    WhichChildren,
)
from supervisors.pool import Routing, pool_spec
from supervisors.registry import Registry
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

__all__ = [
    "Actor",
    "ActorCrashed",
    "Adopt",
    "AdoptPool",
    "Backoff",
    "ChildSpec",
    "Context",
    "Escalation",
    "InjectedFault",
    "InvalidSpec",
    "MailboxFull",
    "MailboxSpec",
    "NoSuchChild",
    "NodeSnapshot",
    "NotRegistered",
    "Overflow",
    "Registry",
    "Resize",
    "Restart",
    "Retune",
    "Routing",
    "StartChild",
    "StartFailed",
    "StopChild",
    "Strategy",
    "SupervisorError",
    "SupervisorFlags",
    "Tree",
    "WhichChildren",
    "keyed_spec",
    "pool_spec",
    "supervisor_spec",
]
