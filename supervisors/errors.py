"""Errors of the supervision runtime.

::

    SupervisorError
    ├── InvalidSpec        a child spec or flags that cannot work
    ├── Escalation         a supervisor gave up: too many restarts, or a child failed to start
    ├── StartFailed        a child's factory or on_start raised
    ├── NoSuchChild        no child by that id under that supervisor
    ├── NotRegistered      no live name at that path (never existed, or removed for good)
    ├── MailboxFull        a bounded mailbox refused the message (overflow policy)
    └── ActorCrashed       raised to an asker when the handler died of a BaseException

A sender that gets ``MailboxFull`` or ``NotRegistered`` still holds its
message: nothing was queued, so it may retry or report upstream.
"""

from __future__ import annotations


class SupervisorError(Exception):
    """Base of every error raised by :mod:`supervisors`."""


class InvalidSpec(SupervisorError):
    pass


class Escalation(SupervisorError):
    pass


class StartFailed(SupervisorError):
    pass


class NoSuchChild(SupervisorError):
    pass


class NotRegistered(SupervisorError):
    pass


class MailboxFull(SupervisorError):
    pass


class InjectedFault(SupervisorError):
    """Raised in place of handling a message when an operator armed a fault
    on the actor (:meth:`Registry.inject_fault`), to rehearse a crash."""


class ActorCrashed(SupervisorError):
    pass
