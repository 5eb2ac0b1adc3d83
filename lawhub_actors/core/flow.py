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
from collections import deque
from dataclasses import dataclass
from itertools import islice
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


_INDEX_BITS = 20
"""An update's index in its entry fits in 20 bits (Meta batches up to 1,000)."""


def _pack(at: Position) -> int:
    seq, index = at
    if not 0 <= index < 1 << _INDEX_BITS:
        raise ValueError(f"index {index} out of range")
    return seq << _INDEX_BITS | index


def _unpack(packed: int) -> Position:
    return packed >> _INDEX_BITS, packed & ((1 << _INDEX_BITS) - 1)


class LeftBehind:
    """The positions of the updates left in the journal, per conversation,
    in order — so coming back for a conversation reads exactly its entries,
    never the span between — with the oldest position found in O(log n).

    A conversation is *behind* while it has positions here; every later
    update of it is left behind too (appended), so its order holds. Each
    position costs about 40 bytes (one int in a deque): ``count`` is what
    the reader bounds."""

    def __init__(self) -> None:
        self._at: dict[Conversation, deque[int]] = {}
        self._by_tenant: dict[str, dict[Conversation, None]] = {}
        """Per tenant, its conversations behind in the order they fell behind."""
        self._heap: list[tuple[int, Conversation]] = []
        self.count = 0
        """Positions held, over every conversation."""

    def __contains__(self, conversation: object) -> bool:
        return conversation in self._at

    def __len__(self) -> int:
        """Conversations behind."""
        return len(self._at)

    def leave(self, conversation: Conversation, at: Position) -> None:
        """The update at ``at`` stays in the journal; positions of one
        conversation must come in journal order."""
        packed = _pack(at)
        positions = self._at.get(conversation)
        if positions is None:
            positions = self._at[conversation] = deque()
            self._by_tenant.setdefault(conversation[0], {})[conversation] = None
            heapq.heappush(self._heap, (packed, conversation))
        elif positions and positions[-1] >= packed:
            raise ValueError(f"{conversation}: {at} is not after {_unpack(positions[-1])}")
        positions.append(packed)
        self.count += 1

    def next(self, conversation: Conversation) -> Position:
        """Its oldest position left behind."""
        return _unpack(self._at[conversation][0])

    def peek(self, conversation: Conversation, most: int) -> list[Position]:
        """Its oldest ``most`` positions, in order."""
        return [_unpack(packed) for packed in islice(self._at[conversation], most)]

    def handed(self, conversation: Conversation) -> None:
        """Its oldest position was handed out (or dropped); with none left,
        the conversation is no longer behind."""
        positions = self._at[conversation]
        positions.popleft()
        self.count -= 1
        if positions:
            heapq.heappush(self._heap, (positions[0], conversation))
            if len(self._heap) > 4 * len(self._at) + 64:  # stale entries piled up
                self._heap = [(p[0], c) for c, p in self._at.items()]
                heapq.heapify(self._heap)
            return
        del self._at[conversation]
        tenant = self._by_tenant[conversation[0]]
        del tenant[conversation]
        if not tenant:
            del self._by_tenant[conversation[0]]

    def oldest(self) -> Position | None:
        heap = self._heap
        while heap:
            packed, conversation = heap[0]
            positions = self._at.get(conversation)
            if positions and positions[0] == packed:
                return _unpack(packed)
            heapq.heappop(heap)  # stale: handed out since
        return None

    def tenants(self) -> list[str]:
        return list(self._by_tenant)

    def has_tenant(self, tenant: str) -> bool:
        return tenant in self._by_tenant

    def of_tenant(self, tenant: str) -> list[Conversation]:
        """The tenant's conversations behind, those behind longest first."""
        return list(self._by_tenant.get(tenant, ()))

    def count_of_tenant(self, tenant: str) -> int:
        return len(self._by_tenant.get(tenant, ()))


class Unsettled:
    """Journal entries with updates handed out and not settled yet; the
    oldest of them bounds the cursor (rule 3)."""

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        self._heap: list[int] = []
        """Every seq added, oldest first; a settled one leaves it lazily."""

    def add(self, seq: int) -> None:
        if seq not in self._counts:
            self._counts[seq] = 0
            heapq.heappush(self._heap, seq)
        self._counts[seq] += 1

    def settle(self, seq: int) -> None:
        _decrement(self._counts, seq)

    def oldest(self) -> int | None:
        heap = self._heap
        while heap and heap[0] not in self._counts:
            heapq.heappop(heap)
        return heap[0] if heap else None


def stall(lag: int, idle_s: float, stall_after_s: float) -> str | None:
    """Why processing looks stuck, or ``None``: a backlog (``lag`` entries
    not processed) with nothing settled for ``idle_s`` seconds. A backlog
    that drains, however large, is the gateway doing its job."""
    if lag > 0 and idle_s >= stall_after_s:
        return (f"{lag} journal entries wait and nothing was processed for"
                f" {idle_s:.0f} s (stall_after_s = {stall_after_s:g})")
    return None
