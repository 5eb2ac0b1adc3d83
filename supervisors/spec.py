"""What a supervisor is told: child specs and supervisor flags.

Every default lives here, in one place. The objects are frozen: a running
supervisor is re-tuned by handing it new flags, never by mutating these.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from supervisors.errors import InvalidSpec

if TYPE_CHECKING:
    from supervisors.actor import Actor


class Restart(enum.StrEnum):
    """When a child that exited is started again.

    - ``permanent``: always.
    - ``transient``: only after an abnormal exit (a crash); a normal stop is final.
    - ``temporary``: never; the child is forgotten when it exits.
    """

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class Strategy(enum.StrEnum):
    """Which children are restarted when one of them exits abnormally.

    - ``one_for_one``: only the one that exited.
    - ``one_for_all``: all of them: the others are stopped (in reverse start
      order), then all are started again in order.
    - ``rest_for_one``: the one that exited and every child started after it.
    """

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class Overflow(enum.StrEnum):
    """What a bounded mailbox does with a message when it is full.

    - ``block``: the sender waits up to ``block_timeout_s`` for room, then
      gets :class:`~supervisors.errors.MailboxFull`.
    - ``refuse``: the sender gets :class:`~supervisors.errors.MailboxFull` at once.
    """

    BLOCK = "block"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class MailboxSpec:
    """Bounds of a child's mailbox. ``capacity=None`` is the only unbounded form."""

    capacity: int | None = 10_000
    overflow: Overflow = Overflow.BLOCK
    block_timeout_s: float = 2.0

    def check(self) -> None:
        if self.capacity is not None and self.capacity < 1:
            raise InvalidSpec(f"mailbox capacity must be >= 1 or None, got {self.capacity}")
        if self.block_timeout_s < 0:
            raise InvalidSpec("mailbox block_timeout_s must be >= 0")


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before a restart: ``min_s * multiplier**n`` capped at ``max_s``,
    where ``n`` counts the child's restarts within the intensity period,
    spread by +/- ``jitter`` (a fraction, kept within ``[min_s, max_s]``) so
    that siblings do not restart in lockstep."""

    min_s: float = 0.005
    max_s: float = 5.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def check(self) -> None:
        if not 0 <= self.min_s <= self.max_s:
            raise InvalidSpec(f"backoff needs 0 <= min_s <= max_s, got {self.min_s}, {self.max_s}")
        if self.multiplier < 1:
            raise InvalidSpec("backoff multiplier must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise InvalidSpec("backoff jitter must be within [0, 1]")


@dataclass(frozen=True, slots=True)
class SupervisorFlags:
    """How a supervisor reacts to its children's exits.

    More than ``max_restarts`` restarts within ``period_s`` seconds and the
    supervisor gives up: it stops all its children and exits abnormally
    itself, which its own supervisor sees as a crash (escalation).
    """

    strategy: Strategy = Strategy.ONE_FOR_ONE
    max_restarts: int = 5
    period_s: float = 10.0
    backoff: Backoff = field(default_factory=Backoff)
    start_timeout_s: float = 5.0

    def check(self) -> None:
        if self.max_restarts < 0:
            raise InvalidSpec("max_restarts must be >= 0")
        if self.period_s <= 0:
            raise InvalidSpec("period_s must be > 0")
        if self.start_timeout_s <= 0:
            raise InvalidSpec("start_timeout_s must be > 0")
        self.backoff.check()


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One child of a supervisor.

    ``factory`` builds a fresh :class:`~supervisors.actor.Actor` at every
    (re)start; state never survives a restart except what the factory or
    ``on_start`` reloads. ``shutdown_s`` is how long an orderly stop may take
    before the child's remaining mailbox is abandoned. A message whose handler
    crashed is handed again ``message_retries`` times, then dead-lettered.
    ``kind`` is only a label for operators' snapshots. With
    ``passivate_after_s`` the actor is stopped (a normal exit) once it has
    been idle that long with an empty mailbox. ``adopt`` is what the running
    child is told when its supervisor adopts a new version of this spec
    (supervisors and pools reconcile their own children; a plain worker has
    none: its new spec applies from its next start, its mailbox bounds at once).
    """

    id: str
    factory: Callable[[], Actor]
    restart: Restart = Restart.PERMANENT
    shutdown_s: float = 5.0
    mailbox: MailboxSpec = field(default_factory=MailboxSpec)
    message_retries: int = 1
    kind: str = "worker"
    passivate_after_s: float | None = None
    adopt: object | None = None

    def check(self) -> None:
        if not self.id or "/" in self.id:
            raise InvalidSpec(f"child id must be non-empty and contain no '/': {self.id!r}")
        if self.shutdown_s < 0:
            raise InvalidSpec(f"{self.id}: shutdown_s must be >= 0")
        if self.passivate_after_s is not None and self.passivate_after_s <= 0:
            raise InvalidSpec(f"{self.id}: passivate_after_s must be > 0")
        if self.message_retries < 0:
            raise InvalidSpec(f"{self.id}: message_retries must be >= 0")
        self.mailbox.check()


def check_children(specs: list[ChildSpec]) -> None:
    """Raise :class:`InvalidSpec` unless every spec is valid and ids are unique."""
    seen: set[str] = set()
    for spec in specs:
        spec.check()
        if spec.id in seen:
            raise InvalidSpec(f"duplicate child id {spec.id!r}")
        seen.add(spec.id)
