"""Messages of the runtime itself.

Three families:

- *cell control*, sent on the system lane by a supervisor to a child's cell
  and answered through a future: ``Start``, ``Terminate``, ``Stop``,
  ``IdleCheck``;
- *markers* that travel on the user lane to keep their place in the order:
  ``Hold`` and ``Barrier`` (pool resizing);
- *supervisor requests and reports*: ``ChildExited`` (the one report every
  exit path produces), ``TryAgain`` (a supervisor messaging itself to
  retry a restart), ``StartChild``, ``StopChild``, ``WhichChildren``,
  ``Resize``, ``EnsureStarted``, ``Retune``, ``Adopt``, ``AdoptPool``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import pykka

from supervisors.strategy import ExitKind

if TYPE_CHECKING:
    from supervisors.spec import ChildSpec, SupervisorFlags


# -- cell control (system lane) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """Build a fresh actor from the factory and run ``on_start``. Answers
    the new incarnation number; a no-op when one is already running.
    ``spec``: the child's current spec (its supervisor may have adopted a
    new one since the cell began), which the cell takes first."""

    spec: ChildSpec | None = None


@dataclass(frozen=True, slots=True)
class Terminate:
    """Run ``on_stop`` and drop the actor; queued messages stay queued."""


@dataclass(frozen=True, slots=True)
class Stop:
    """End the cell's thread. On the user lane it drains first (orderly).
    ``target`` is the cell's urn: a stop left queued after its cell ended
    must not stop the next cell on the same mailbox."""

    target: str


@dataclass(frozen=True, slots=True)
class IdleCheck:
    """Passivate when nothing arrived for the configured idle time."""


# -- markers (user lane) -------------------------------------------------------


class HoldToken:
    """Released once; callbacks registered before the release run then."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._released = False
        self._callbacks: list[Callable[[], None]] = []

    def on_release(self, callback: Callable[[], None]) -> bool:
        """Register ``callback``; ``False`` when already released (not registered)."""
        with self._lock:
            if self._released:
                return False
            self._callbacks.append(callback)
            return True

    def release(self) -> None:
        with self._lock:
            self._released = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    @property
    def released(self) -> bool:
        return self._released


class Countdown:
    """Calls ``on_zero`` once, when ``arrive`` has been called ``n`` times."""

    def __init__(self, n: int, on_zero: Callable[[], None]) -> None:
        self._lock = threading.Lock()
        self._left = n
        self._on_zero = on_zero
        if n == 0:
            on_zero()

    def arrive(self) -> None:
        with self._lock:
            self._left -= 1
            fire = self._left == 0
        if fire:
            self._on_zero()


@dataclass(frozen=True, slots=True)
class Hold:
    """Pause the mailbox here until ``token`` is released."""

    token: HoldToken
    runtime_marker: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Barrier:
    """Everything queued before this marker has been handled."""

    countdown: Countdown
    runtime_marker: ClassVar[bool] = True


# -- supervisor requests and reports -----------------------------------------


@dataclass(frozen=True, slots=True)
class ChildExited:
    """A child's actor stopped running: the single report of every exit path."""

    child_id: str
    incarnation: int
    kind: ExitKind
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class TryAgain:
    """Start these children (in order) now; sent by a supervisor to itself."""

    child_ids: tuple[str, ...]
    owner: int


@dataclass(frozen=True, slots=True)
class StartChild:
    spec: ChildSpec


@dataclass(frozen=True, slots=True)
class StopChild:
    """Stop a child (draining its mailbox) and forget it."""

    child_id: str


@dataclass(frozen=True, slots=True)
class WhichChildren:
    pass


@dataclass(frozen=True, slots=True)
class Resize:
    size: int


@dataclass(frozen=True, slots=True)
class EnsureStarted:
    key: str


@dataclass(frozen=True, slots=True)
class Retune:
    """Adopt new flags (intensity, backoff) without restarting anyone."""

    flags: SupervisorFlags


@dataclass(frozen=True, slots=True)
class Adopt:
    """Take a new version of this supervisor's spec in place (as OTP's
    release handling changes a running supervisor's child specs): new flags,
    children added or removed, and the rest keep running with their new spec
    recorded for their next start. Answers an :class:`AdoptReport`."""

    flags: SupervisorFlags
    children: tuple[ChildSpec, ...]


@dataclass(frozen=True, slots=True)
class AdoptPool:
    """The pool's form of :class:`Adopt`: new flags, worker spec and size."""

    flags: SupervisorFlags
    worker: ChildSpec
    size: int


@dataclass(frozen=True, slots=True)
class AdoptReport:
    """A supervisor's answer to :class:`Adopt`: what failed here, and the
    answers still to come from child supervisors (each told by a message
    queued in its mailbox, never waited for by the supervisor itself: a
    child that is restarting adopts when it runs again)."""

    problems: tuple[str, ...] = ()
    pending: tuple[Pending, ...] = ()


Pending = tuple[str, "pykka.Future[object]"]
"""A child supervisor's path and its answer to come."""
