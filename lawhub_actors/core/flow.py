"""Flow control from the journal to the conversation shards (pure).

Rules:

1. The journal is the queue. The reader hands out at most a *window* of
   unsettled updates — per conversation, per tenant, in total, and in bytes —
   and reads on only as they are settled. Mailboxes never hold more than
   the window, so no backlog, however large, can fill one.
2. An update whose conversation has no room is *left behind*: it stays in
   the journal, and so does every later update of that conversation, until
   the reader comes back for them in journal order. Other conversations go
   on meanwhile, so one conversation's (or one firm's) backlog never holds
   up another's, and nothing waits in memory but a position.
3. The cursor (everything at or below it is settled) is below the oldest
   unsettled update handed out and below the oldest position left behind.

A *position* is ``(journal seq, index of the update in its entry)``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeVar

Position = tuple[int, int]
Conversation = tuple[str, str]
"""(tenant, the key its session pool hashes on)."""
K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class Limits:
    per_conversation: int
    per_tenant: int
    total: int
    total_bytes: int


class Window:
    """What is handed out and not settled yet, by conversation and tenant.

    A conversation is ``(tenant, key)``. ``size`` is an update's share of
    its body's bytes. The byte limit never stops the first update handed
    out when nothing else is (one huge body still moves)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.count = 0
        self.bytes = 0
        self._conversations: dict[Conversation, int] = {}
        self._tenants: dict[str, int] = {}

    @property
    def open(self) -> bool:
        """Whether anything at all could be handed out now."""
        limits = self.limits
        return self.count < limits.total and (self.count == 0 or self.bytes < limits.total_bytes)

    def tenant_has_room(self, tenant: str) -> bool:
        return self.open and self._tenants.get(tenant, 0) < self.limits.per_tenant

    def has_room(self, conversation: Conversation, size: int = 0) -> bool:
        limits = self.limits
        return (
            self.count < limits.total
            and (self.count == 0 or self.bytes + size <= limits.total_bytes)
            and self._tenants.get(conversation[0], 0) < limits.per_tenant
            and self._conversations.get(conversation, 0) < limits.per_conversation
        )

    def take(self, conversation: Conversation, size: int) -> None:
        self.count += 1
        self.bytes += size
        self._conversations[conversation] = self._conversations.get(conversation, 0) + 1
        self._tenants[conversation[0]] = self._tenants.get(conversation[0], 0) + 1

    def give_back(self, conversation: Conversation, size: int) -> None:
        self.count -= 1
        self.bytes -= size
        _decrement(self._conversations, conversation)
        _decrement(self._tenants, conversation[0])

    def of_tenant(self, tenant: str) -> int:
        return self._tenants.get(tenant, 0)


def _decrement(counts: dict[K, int], key: K) -> None:
    left = counts.get(key, 0) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)


class LeftBehind:
    """Conversations whose updates from a position on are still in the
    journal, with the oldest such position found in O(log n)."""

    def __init__(self) -> None:
        self._at: dict[Conversation, Position] = {}
        self._by_tenant: dict[str, set[Conversation]] = {}
        self._heap: list[tuple[int, int, int, Conversation]] = []
        self._pushes = 0

    def __contains__(self, conversation: object) -> bool:
        return conversation in self._at

    def __len__(self) -> int:
        return len(self._at)

    def position(self, conversation: Conversation) -> Position:
        return self._at[conversation]

    def leave(self, conversation: Conversation, at: Position) -> None:
        """From ``at`` on, ``conversation``'s updates stay in the journal
        (or, for one already behind, its next update is at ``at``)."""
        self._at[conversation] = at
        self._by_tenant.setdefault(conversation[0], set()).add(conversation)
        self._pushes += 1  # a tie-breaker: conversations need not be ordered
        heapq.heappush(self._heap, (at[0], at[1], self._pushes, conversation))
        if len(self._heap) > 4 * len(self._at) + 64:  # stale entries piled up: rebuild
            self._heap = [(seq, index, n, conversation)
                          for n, (conversation, (seq, index)) in enumerate(self._at.items())]
            heapq.heapify(self._heap)

    def caught_up(self, conversation: Conversation) -> None:
        """Everything of ``conversation`` in the journal has been handed out."""
        if self._at.pop(conversation, None) is not None:
            tenant = self._by_tenant[conversation[0]]
            tenant.discard(conversation)
            if not tenant:
                del self._by_tenant[conversation[0]]

    def oldest(self) -> Position | None:
        heap = self._heap
        while heap:
            seq, index, _, conversation = heap[0]
            if self._at.get(conversation) == (seq, index):
                return seq, index
            heapq.heappop(heap)  # stale: moved on or caught up
        return None

    def tenants(self) -> Iterator[str]:
        return iter(list(self._by_tenant))

    def of_tenant(self, tenant: str) -> set[Conversation]:
        return self._by_tenant.get(tenant, set())

    def count_of_tenant(self, tenant: str) -> int:
        return len(self._by_tenant.get(tenant, ()))


def stall(lag: int, idle_s: float, stall_after_s: float) -> str | None:
    """Why processing looks stuck, or ``None``: a backlog (``lag`` entries
    not processed) with nothing settled for ``idle_s`` seconds. A backlog
    that drains, however large, is the gateway doing its job."""
    if lag > 0 and idle_s >= stall_after_s:
        return (f"{lag} journal entries wait and nothing was processed for"
                f" {idle_s:.0f} s (stall_after_s = {stall_after_s:g})")
    return None
