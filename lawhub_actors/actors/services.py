"""What the actors share: adapters and callbacks, built once by the runtime."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lawhub_actors.adapters.breaker_board import BreakerBoard, LocalBoard
from lawhub_actors.adapters.dedupe import Dedupe
from lawhub_actors.adapters.journal import Journal
from lawhub_actors.adapters.leases import Ownership
from lawhub_actors.adapters.store import Store
from lawhub_actors.core.assist import Classifier
from lawhub_actors.core.breaker import BreakerState, advance, retry_after
from lawhub_actors.live_config import LiveConfig
from lawhub_actors.settings import Settings


@dataclass
class InboundFlow:
    """What the dispatcher shows of its flow control, for ``/metrics``,
    ``/healthz`` and the console. Written by the dispatcher only; readers
    see plain attributes (each read is atomic under the GIL)."""

    settled_upto: int = 0
    """Every journal entry at or below this is fully processed, for the
    partitions in :attr:`settled_for`."""
    settled_for: dict[int, int] = field(default_factory=dict)
    """The partitions (and their epochs) :attr:`settled_upto` speaks for.
    When they change, ``settled_upto`` is lowered first and this set after:
    a reader that reads this first, then ``settled_upto``, never sees a
    figure too high for the partitions it read."""
    read_upto: int = 0
    """The reader has read this far ahead."""
    in_flight: int = 0
    """Updates handed to shards and not settled yet."""
    in_flight_bytes: int = 0
    behind: int = 0
    """Conversations passed over for lack of room, to be read again."""
    moved_at: float = field(default_factory=time.monotonic)
    """When an update was last settled (or nothing was waiting)."""


@dataclass(frozen=True, slots=True)
class CircuitView:
    """A number's breaker as its actor last left it, with the actor's clock:
    what the API checks a send against without asking the actor."""

    state: BreakerState
    clock: Callable[[], float]

    def now(self) -> tuple[str, float]:
        """``(circuit name, seconds until it may be tried again)`` now."""
        at = self.clock()
        current = advance(self.state, at)
        return current.name.value, retry_after(current, at)


@dataclass(frozen=True)
class Services:
    config: LiveConfig
    """The running configuration; read ``settings`` once per message."""
    store: Store
    journal: Journal
    dedupe: Dedupe
    ownership: Ownership
    """The partitions this node holds: writes for a conversation are fenced by them."""
    flow: InboundFlow = field(default_factory=InboundFlow)
    breakers: BreakerBoard = field(default_factory=LocalBoard)
    """Where business numbers' open circuits are shared between nodes."""
    circuits: dict[str, CircuitView] = field(default_factory=dict)
    """Each number's breaker as its actor last left it, by phone number id
    (written by the breaker actors only, each a whole immutable view)."""
    inline_classifier: Classifier | None = None
    """The built-in rules, run by shards in the message's own transaction;
    None when classification is remote (the assist pool, a slow step)."""

    @property
    def settings(self) -> Settings:
        """The configuration as it is now (a reload swaps it whole)."""
        return self.config.current

    @property
    def remote_classifier(self) -> bool:
        return self.inline_classifier is None


class Wakeup:
    """Coalesces many "there is more" signals into at most one queued message.

    The journal commits thousands of times a second under load; the
    dispatcher needs one nudge per batch it has not read yet, not one per
    commit. ``signal`` sends only when no nudge is pending; the receiver
    calls ``clear`` before it reads, so nothing committed after that read
    began can be missed.
    """

    def __init__(self, send: Callable[[], None]) -> None:
        self._send = send
        self._pending = False
        self._lock = threading.Lock()

    def signal(self) -> None:
        with self._lock:
            if self._pending:
                return
            self._pending = True
        try:
            self._send()
        except Exception:  # noqa: BLE001 - no dispatcher now: it reads all on its start
            self.clear()

    def clear(self) -> None:
        with self._lock:
            self._pending = False
