"""What application code subclasses: :class:`Actor`, and its :class:`Context`.

An :class:`Actor` is a plain object with callbacks; a cell (a pykka
``ThreadingActor``) runs it on its own thread and feeds it the messages of
its mailbox one at a time. A restart throws the object away and asks the
child spec's factory for a new one, on the same mailbox.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from supervisors.errors import NotRegistered

if TYPE_CHECKING:
    from supervisors.registry import Registry
    from supervisors.timer import Scheduler


@dataclass(frozen=True, slots=True)
class Runtime:
    """What every actor of one tree shares. ``clock`` and ``uniform`` are
    injectable so tests drive time and jitter."""

    registry: Registry
    scheduler: Scheduler
    clock: Callable[[], float] = time.monotonic
    uniform: Callable[[], float] = field(default=random.random)


class Context:
    """An actor's view of where it lives."""

    def __init__(self, path: str, runtime: Runtime) -> None:
        self.path = path
        self.runtime = runtime
        self.stop_requested = False

    @property
    def registry(self) -> Registry:
        return self.runtime.registry

    def tell_self(self, message: Any) -> None:
        """Queue ``message`` for this actor, past its mailbox's bound: an
        actor waiting for room in its own mailbox would wait forever."""
        self.runtime.registry.tell(self.path, message, bounded=False)

    def tell_self_later(self, delay_s: float, message: Any) -> None:
        """Deliver ``message`` to this actor's own mailbox after ``delay_s``
        (dropped if the actor's name is gone by then: it was stopped for good)."""
        registry, path = self.runtime.registry, self.path

        def deliver() -> None:
            with contextlib.suppress(NotRegistered):
                registry.tell(path, message, bounded=False)  # never stall the timer thread

        self.runtime.scheduler.call_later(delay_s, deliver)

    def stop(self) -> None:
        """Stop normally after the current message (a ``normal`` exit)."""
        self.stop_requested = True

    def show(self, **details: Any) -> None:
        """Publish ``details`` on this actor's node for operators: a tree
        snapshot shows them under ``info``, without asking the actor."""
        self.runtime.registry.get(self.path).details.update(details)


class Actor:
    """Base class of supervised actors. Override what you need.

    Raising from any callback is a crash: the supervisor hears of it and
    restarts (or not) according to the child spec. Never catch broadly just
    to stay alive: let it crash.
    """

    context: Context

    def on_start(self) -> None:
        """Set up; runs on the actor's thread before the first message."""

    def receive(self, message: Any) -> Any:
        """Handle one message; the return value answers an ``ask``."""
        raise TypeError(f"{type(self).__name__} does not handle {type(message).__name__}")

    def on_stop(self) -> None:
        """Clean up after an orderly stop or before a sibling-caused restart."""

    def on_failure(self, error: BaseException) -> None:
        """Clean up after this actor crashed (``on_stop`` is not called then)."""
