"""Mailboxes that belong to a name, not to an actor.

A :class:`Mailbox` is created for a path (``inbound/sessions/firm-a/0``) and
outlives every actor that consumes it: when an actor crashes and restarts,
the queued messages wait for the new incarnation instead of being dropped
with the old thread (pykka's own inbox dies with its actor). Only removing
the name for good closes it; then every queued ``ask`` fails with
``ActorDeadError`` and every queued ``tell`` is handed to the dead-letter hook.

Two lanes: the *system* lane (supervisor control: start, terminate, stop) is
always served first and never paused or bounded; the *user* lane carries
ordinary messages, is bounded by :class:`~supervisors.spec.MailboxSpec` and
is paused while no actor is running on it (before the first start, after a
crash until the restart, while a pool resize holds it).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pykka

from supervisors.errors import MailboxFull, NotRegistered
from supervisors.pykka_seam import Envelope
from supervisors.spec import MailboxSpec, Overflow

DeadLetterHook = Callable[[str, Any, str], None]
"""Called with (path, message, reason) for every ``tell`` that is dropped."""

NO_ACTOR = "no-actor"
"""Pause reason while no actor incarnation consumes the mailbox."""


class MailboxClosed(NotRegistered):
    """The name was removed for good; re-resolve it or give up."""


class Mailbox:
    def __init__(self, path: str, spec: MailboxSpec, dead_letter: DeadLetterHook) -> None:
        self.path = path
        self._spec = spec
        self._dead_letter = dead_letter
        self._lock = threading.Lock()
        self._readable = threading.Condition(self._lock)
        self._writable = threading.Condition(self._lock)
        self._user: deque[Envelope[Any]] = deque()
        self._system: deque[Envelope[Any]] = deque()
        self._pauses: set[object] = {NO_ACTOR}
        self._in_hand = False
        self._closed = False

    # -- senders --------------------------------------------------------

    def put(self, envelope: Envelope[Any], *, wait: bool = True, bounded: bool = True) -> bool:
        """Queue on the user lane, honouring the overflow policy; with
        ``wait=False`` a full mailbox refuses at once whatever the policy
        (for senders that must never block, such as an event loop). With
        ``bounded=False`` the bound does not apply: for messages whose number
        the receiver already bounds (acknowledgements of work it handed out,
        messages to itself) and which must never wait behind that work.

        Returns whether an actor is consuming the mailbox right now (keyed
        routers use it to start one on demand).
        """
        with self._lock:
            capacity = self._spec.capacity
            if bounded and capacity is not None and len(self._user) >= capacity:
                if not wait:
                    raise MailboxFull(f"{self.path}: {capacity} messages queued")
                self._wait_for_room(capacity)
            if self._closed:
                raise MailboxClosed(self.path)
            self._user.append(envelope)
            self._readable.notify()
            return NO_ACTOR not in self._pauses

    def offer(self, envelope: Envelope[Any]) -> bool:
        """Queue without ever waiting; ``False`` when the mailbox is full.
        Routers call it under their own lock, then wait for room outside it."""
        with self._lock:
            if self._closed:
                raise MailboxClosed(self.path)
            capacity = self._spec.capacity
            if capacity is not None and len(self._user) >= capacity:
                return False
            self._user.append(envelope)
            self._readable.notify()
            return True

    def wait_for_room(self, deadline: float) -> bool:
        """Wait until the mailbox has room or ``deadline`` (monotonic) passes."""
        with self._lock:
            return self._room_by(deadline)

    def _room_by(self, deadline: float) -> bool:
        """:meth:`wait_for_room` with the lock held: the one place senders wait."""
        capacity = self._spec.capacity
        while capacity is not None and len(self._user) >= capacity and not self._closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._writable.wait(remaining)
            capacity = self._spec.capacity
        return True

    def still_full(self) -> MailboxFull:
        """The error for a sender that waited its ``block_timeout_s`` in vain."""
        return MailboxFull(f"{self.path}: still full after {self._spec.block_timeout_s}s")

    def put_marker(self, envelope: Envelope[Any]) -> None:
        """Queue on the user lane ignoring the bound: runtime markers (pool
        barriers and holds) must keep their place in the order."""
        with self._lock:
            if self._closed:
                raise MailboxClosed(self.path)
            self._user.append(envelope)
            self._readable.notify()

    def put_front(self, envelope: Envelope[Any]) -> None:
        """Put a message back at the head, to be handed again (crash retry)."""
        with self._lock:
            self._user.appendleft(envelope)
            self._readable.notify()

    def put_system(self, envelope: Envelope[Any]) -> None:
        with self._lock:
            if self._closed:
                raise MailboxClosed(self.path)
            self._system.append(envelope)
            self._readable.notify()

    def _wait_for_room(self, capacity: int) -> None:
        if self._spec.overflow is Overflow.REFUSE:
            raise MailboxFull(f"{self.path}: {capacity} messages queued")
        if not self._room_by(time.monotonic() + self._spec.block_timeout_s):
            raise self.still_full()

    # -- the consuming actor ---------------------------------------------

    def get(self) -> Envelope[Any]:
        """Next envelope: system lane first; user lane unless paused.

        The consumer asks for the next one only when done with the last,
        so a user envelope counts as in hand (:meth:`load`) until then."""
        with self._lock:
            self._in_hand = False
            while True:
                if self._system:
                    return self._system.popleft()
                if self._user and not self._pauses:
                    envelope = self._user.popleft()
                    self._in_hand = True
                    self._writable.notify()
                    return envelope
                self._readable.wait()

    def pause(self, reason: object) -> None:
        with self._lock:
            self._pauses.add(reason)

    def resume(self, reason: object) -> None:
        with self._lock:
            self._pauses.discard(reason)
            self._readable.notify_all()

    def detach_if_empty(self) -> bool:
        """Stop serving user messages if none is queued (passivation). Atomic
        with ``put``: a sender either lands before and keeps the actor, or
        after and learns that no actor is running."""
        with self._lock:
            if self._user:
                return False
            self._pauses.add(NO_ACTOR)
            return True

    # -- the name's owner --------------------------------------------------

    def retune(self, spec: MailboxSpec) -> None:
        """Adopt new bounds; a larger capacity wakes blocked senders."""
        with self._lock:
            self._spec = spec
            self._writable.notify_all()

    def close(self, reason: str) -> int:
        """Close for good; fail queued asks, dead-letter queued tells.
        Returns how many tells were dead-lettered."""
        with self._lock:
            if self._closed:
                return 0
            self._closed = True
            leftovers = list(self._system) + list(self._user)
            self._system.clear()
            self._user.clear()
            self._writable.notify_all()
        return self._discard(leftovers, reason)

    def close_if_idle(self) -> bool:
        """Close only when nothing is queued and no actor consumes it."""
        with self._lock:
            if self._user or self._system or NO_ACTOR not in self._pauses:
                return False
            self._closed = True
            return True

    def _discard(self, envelopes: list[Envelope[Any]], reason: str) -> int:
        dropped = 0
        for envelope in envelopes:
            if envelope.reply_to is not None:
                error = pykka.ActorDeadError(f"{self.path}: {reason}")
                envelope.reply_to.set_exception(exc_info=(type(error), error, None))
            elif not _is_runtime_marker(envelope.message):
                dropped += 1
                self._dead_letter(self.path, envelope.message, reason)
        return dropped

    # -- observation -------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def spec(self) -> MailboxSpec:
        return self._spec

    def depth(self) -> int:
        return len(self._user)

    def load(self) -> int:
        """Queued user messages plus the one being handled, if any."""
        return len(self._user) + self._in_hand

    def is_serving(self) -> bool:
        return NO_ACTOR not in self._pauses


def _is_runtime_marker(message: object) -> bool:
    return getattr(message, "runtime_marker", False) is True


class InboxView:
    """What pykka sees as the actor's inbox (its ``ActorInbox`` protocol).

    ``empty()`` is always true: pykka calls it only after the actor stopped,
    to drain and fail what is left. Here what is left belongs to the next
    incarnation, so there is never anything for pykka to drain.
    """

    def __init__(self, mailbox: Mailbox) -> None:
        self._mailbox = mailbox

    def put(self, envelope: Envelope[Any], /) -> None:
        self._mailbox.put(envelope)

    def get(self) -> Envelope[Any]:
        return self._mailbox.get()

    def empty(self) -> bool:
        return True
