"""The dispatcher: from committed journal entries to conversation shards.

It reads the journal in order, normalizes each entry, drops updates the
dedupe fast path has already seen, quarantines what belongs to no tenant,
and hands every update to its tenant's session pool keyed by customer, so
one conversation is handled by one shard in arrival order.

**It pulls** (:mod:`lawhub_actors.core.flow`): at most a window of
unsettled updates is handed out — per conversation, per tenant, in total,
in bytes — and the journal is read further only as shards settle them.
The journal is the queue; a backlog of any size waits there, not in
mailboxes or memory. An update whose conversation has no room is *left
behind* in the journal with every later update of its conversation, and
the reader goes on with the others; it comes back for them, oldest
first, when they have room. Settlements come back past the mailbox's bound
(``bounded=False``): an acknowledgement never waits behind the work it
acknowledges, so bounded mailboxes cannot deadlock.

Updates go to shards in batches (one message per shard per round, one
transaction there), and come back settled per batch.

A slow step (checking a file, a remote classification) holds only its
conversation: until the update that takes one is settled, that
conversation has no room, so its later updates stay in the journal; every
other conversation goes on.

**No single input stops it**: an entry that cannot be parsed, normalized
or recorded is quarantined with its reason (the journal keeps the body)
and the reader goes on; only a store that cannot commit at all makes it
crash (and its restart resumes from the cursor).

**It works for the partitions this node holds** (:mod:`leases`): an
update of a conversation in another node's partition is passed over. Each
partition has its cursor (every entry at or below it fully processed for
that partition), committed with the store and fenced by the partition's
epoch; on (re)start, and whenever the partitions held change, the reader
starts again from the lowest cursor of what it holds, passing over what a
partition's cursor says is done. Replays are harmless: every effect is
idempotent in the store, and dedupe keys are marked only after their
effect is durable. An update refused because its partition was taken over
(``fenced``) is neither quarantined nor marked: its new owner does it.
What an entry holds besides updates is recorded by the holder of the
entry's own partition (its sequence number modulo the partitions).
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from lawhub_actors.actors import paths
from lawhub_actors.actors.backlog import BacklogWatch, limits_of
from lawhub_actors.actors.entry_reader import EntryReader, FirstFound, Read, Update
from lawhub_actors.actors.inbound_messages import (
    Inbound,
    InboundBatch,
    InFlight,
    JournalAdvanced,
    OwnershipChanged,
    Processed,
    Settled,
)
from lawhub_actors.actors.inbound_records import describe, quarantine, record_first_read
from lawhub_actors.actors.services import Services, Wakeup
from lawhub_actors.adapters import leases
from lawhub_actors.adapters.journal import Entry
from lawhub_actors.adapters.store import StoreUnavailable
from lawhub_actors.core.flow import Conversation, LeftBehind, Unsettled, Window
from supervisors import Actor, NotRegistered

log = structlog.get_logger("lawhub.dispatcher")

PERSIST_EVERY = 256
PERSIST_AFTER_S = 0.1
"""Cursor commits are batched (a crash replays what came after the last
one, harmlessly): every PERSIST_EVERY entries, or PERSIST_AFTER_S after
progress stops."""
READ_CHUNK = 64
READ_CHUNK_BYTES = 8 * 1024 * 1024
"""Journal entries read at a time, and their bodies' bytes (plus one body)."""


class _Flush:
    """Self-sent: commit the cursor if it moved since the last commit."""


class _Pump:
    """Self-sent after settlements: hand out what now has room."""


class Dispatcher(Actor):
    def __init__(self, services: Services, wakeup: Wakeup) -> None:
        self._services = services
        self._wakeup = wakeup
        self._reset_flow()
        self._reader = EntryReader(services)
        self._flush_armed = False
        self._pump_armed = False
        self._backlog = BacklogWatch()

    def _reset_flow(self) -> None:
        """Nothing handed out, nothing left behind (at start, and when the
        partitions held change: what was handed out before settles unheard)."""
        self._window = Window(limits_of(self._services))
        self._behind = LeftBehind()
        self._handed: dict[tuple[int, str], list[Update]] = {}
        """(journal seq, dedupe key) → what is handed out under it, unsettled."""
        self._unsettled = Unsettled()
        """Journal entries with updates handed out and unsettled."""
        self._slow: dict[Conversation, int] = {}
        """Conversations with an update on a slow step: no room until it settles."""
        self._outbox: dict[str, list[tuple[str, Inbound]]] = {}
        self._outbox_count = 0
        self._dirty: set[str] = set()
        """Tenants given room back since the dispatcher last came back for them."""
        self._all_dirty = True
        self._starved = False
        """Something was left behind for want of bytes in the whole window:
        the next settlement, whoever's, lets every tenant be looked at again."""

    def on_start(self) -> None:
        self._start_from_cursors()
        self._wakeup.clear()  # a nudge lost with an earlier incarnation must not block the next
        self._pump_armed = True  # after the start: a backlog must never hold the start up
        self.context.tell_self(_Pump())

    def _start_from_cursors(self) -> None:
        """Read from the lowest cursor of the partitions held, passing over
        what each partition's own cursor says is done."""
        self._held = self._services.ownership.held()
        self._done_at = self._services.store.read(leases.cursors, list(self._held.epochs))
        """Each partition held → its cursor when it was read (updates at or
        below it are done)."""
        top = self._services.journal.last_committed
        self._persisted = min(self._done_at.values(), default=top)
        self._scan = self._persisted
        self._services.flow.settled_upto = self._scan  # lowered first (see settled_for)
        self._services.flow.settled_for = dict(self._held.epochs)
        backlog = top - self._scan
        if self._scan or backlog:
            log.info("dispatcher_resumes", journal_seq=self._scan, backlog=backlog,
                     partitions=len(self._held.epochs))
        self._show()

    def _ownership_changed(self) -> None:
        self._reset_flow()
        self._start_from_cursors()
        self._all_dirty = True
        self._pump()

    def receive(self, message: Any) -> Any:
        if isinstance(message, Settled | Processed):
            items = message.items if isinstance(message, Settled) else (message,)
            for item in items:
                self._settled(item)
            # One dedupe call per batch (a Redis round trip each), after the facts are durable.
            if done := [item.dedupe_key for item in items
                        if item.failed is None and not item.fenced]:
                self._services.dedupe.mark(done)
            self._after_settling()
        elif isinstance(message, JournalAdvanced):
            self._wakeup.clear()
            self._pump()
        elif isinstance(message, _Pump):
            self._pump_armed = False
            self._pump()
        elif isinstance(message, InFlight):
            unread = int(self._scan < self._services.journal.last_committed)  # may hold some
            return (self._window.of_tenant(message.tenant)
                    + self._behind.count_of_tenant(message.tenant) + unread)
        elif isinstance(message, _Flush):
            self._flush_armed = False
            self._persist(self._settled_upto())
        elif isinstance(message, OwnershipChanged):
            self._ownership_changed()
        else:
            super().receive(message)
        return None

    # -- handing out -----------------------------------------------------------------

    def _pump(self) -> None:
        """Hand out what has room: first what was left behind (oldest
        first), then what is new in the journal."""
        limits = limits_of(self._services)
        if limits != self._window.limits:  # a reload: anyone may have room now
            self._window.limits, self._all_dirty = limits, True
        self._come_back()
        self._read_on()
        self._send_outbox()
        self._advance()
        self._show()

    def _read_on(self) -> None:
        journal = self._services.journal
        if not self._done_at:  # no partition held: nothing here is this node's
            self._scan = journal.last_committed
            return
        max_behind = self._services.settings.inbound.max_behind
        while self._window.open and self._behind.count < max_behind:
            entries = journal.read_after(self._scan, READ_CHUNK, READ_CHUNK_BYTES)
            if not entries:
                return
            for entry in entries:
                if not self._window.open or self._behind.count >= max_behind:
                    return
                self._scan = entry.seq
                self._take_new(entry)
            self._send_outbox_if_full()

    def _take_new(self, entry: Entry) -> None:
        """A journal entry read for the first time: record what is not an
        update, then hand out or leave behind each update, in order."""
        try:
            read = self._read(entry, first=True)
            behind = self._behind
            mine = [u for u in read.updates if self._mine(entry.seq, u)]
            fresh = [u for u in mine if u.conversation not in behind]
            seen = self._services.dedupe.seen([u.key for u in fresh]) if fresh else set()
            for update in mine:
                if update.conversation in behind:  # after the rest of its conversation
                    behind.leave(update.conversation, (entry.seq, update.index))
                elif update.key in seen:
                    continue
                elif self._has_room(update):
                    self._hand_out(entry.seq, update)
                else:
                    self._note_no_room(update)
                    behind.leave(update.conversation, (entry.seq, update.index))
        except StoreUnavailable:
            raise  # not this entry's fault: crash, restart, read again
        except Exception as error:  # noqa: BLE001 - one entry never stops the reader
            self._quarantine(entry.seq, None, "dispatch_failed", {"error": describe(error)})

    def _mine(self, seq: int, update: Update) -> bool:
        """Whether the update is this node's to do: its partition is held, and
        its cursor was below ``seq`` when it was taken."""
        done = self._done_at.get(self._services.ownership.of(*update.conversation))
        return done is not None and seq > done

    def _come_back(self) -> None:
        """Hand out what was left behind of the conversations that have room
        now — those behind longest first, each in its order — until each is
        out of room again or caught up, reading exactly the entries that hold
        them. Only tenants that got room back since the last time are looked
        at (all of them when the whole window reopened), and each only until
        it is out of room: a pump costs what it hands out."""
        if self._all_dirty:
            tenants = self._behind.tenants()
        else:
            tenants = [t for t in self._dirty if self._behind.has_tenant(t)]
        self._all_dirty, self._dirty = False, set()
        for index, tenant in enumerate(tenants):
            if not self._window.open:  # the rest wait for the window to reopen
                self._dirty.update(tenants[index:])
                return
            for conversation in self._behind.of_tenant(tenant):
                if not self._window.tenant_has_room(tenant):
                    break
                if self._conversation_has_room(conversation):
                    self._catch_up(conversation)
            self._send_outbox_if_full()

    def _catch_up(self, conversation: Conversation) -> None:
        behind = self._behind
        while conversation in behind and self._conversation_has_room(conversation):
            positions = behind.peek(conversation, self._window.limits.per_conversation)
            updates = [self._update_at(seq, index) for seq, index in positions]
            seen = self._services.dedupe.seen([u.key for u in updates if u is not None])
            for (seq, index), update in zip(positions, updates, strict=True):
                if update is None or update.conversation != conversation:
                    self._quarantine(seq, None, "reread_failed", {"index": index})
                elif update.key in seen:
                    pass
                elif self._has_room(update):
                    self._hand_out(seq, update)
                else:
                    self._note_no_room(update)
                    return
                behind.handed(conversation)

    def _update_at(self, seq: int, index: int) -> Update | None:
        """The update at a position, read again (from the cache when it can)."""
        read = self._reader.cached(seq)
        if read is None:
            entries = self._services.journal.read_after(seq - 1, 1)
            if not entries or entries[0].seq != seq:
                return None
            try:
                read = self._read(entries[0], first=False)
            except Exception as error:  # noqa: BLE001 - reported as the update's own failure
                log.warning("reread_failed", journal_seq=seq, error=describe(error))
                return None
        return read.updates[index] if index < len(read.updates) else None

    def _conversation_has_room(self, conversation: Conversation) -> bool:
        return conversation not in self._slow and self._window.has_room(conversation)

    def _has_room(self, update: Update) -> bool:
        return (update.conversation not in self._slow
                and self._window.has_room(update.conversation, update.size))

    def _note_no_room(self, update: Update) -> None:
        """Out of room only for this update's share of bytes (its own windows
        and the count have room): room comes back with anyone's settlement."""
        if update.conversation not in self._slow and self._window.has_room(update.conversation):
            self._starved = True

    def _hand_out(self, seq: int, update: Update) -> None:
        self._window.take(update.conversation, update.size)
        self._handed.setdefault((seq, update.key), []).append(update)
        self._unsettled.add(seq)
        if update.slow:
            self._slow[update.conversation] = self._slow.get(update.conversation, 0) + 1
        tenant, key = update.conversation
        epoch = self._held.epochs.get(self._services.ownership.of(tenant, key))
        self._outbox.setdefault(tenant, []).append((key, Inbound(seq, update.event, epoch)))
        self._outbox_count += 1

    def _send_outbox_if_full(self) -> None:
        if self._outbox_count >= 4 * self._batch_max():
            self._send_outbox()

    def _batch_max(self) -> int:
        return self._services.settings.inbound.batch_max

    def _send_outbox(self) -> None:
        """One message per shard (at most ``batch_max`` updates each)."""
        outbox, self._outbox, self._outbox_count = self._outbox, {}, 0
        size = self._batch_max()
        registry = self.context.registry
        gone = False
        for tenant, items in outbox.items():
            for start in range(0, len(items), size):
                chunk = items[start:start + size]
                try:
                    registry.tell_batch(paths.sessions_of(tenant), chunk, InboundBatch.of)
                except NotRegistered:  # the tenant left the config while its updates waited
                    gone = True
                    for _, inbound in chunk:
                        self._quarantine(inbound.journal_seq, inbound.event.phone_number_id,
                                         "tenant_removed", {"tenant": tenant})
                        self._settled(Processed(inbound.journal_seq, inbound.event.dedupe_key))
        if gone:  # room was given back: read on
            self._after_settling()

    # -- reading entries -----------------------------------------------------------

    def _read(self, entry: Entry, *, first: bool) -> Read:
        """The entry's updates; the first time, also what is not an update is recorded."""
        return self._reader.read(entry, first=self._record_first if first else None)

    def _record_first(self, seq: int, found: FirstFound) -> None:
        done = self._done_at.get(seq % self._held.partitions)
        if done is not None and seq > done:  # the entry's own partition is held here
            record_first_read(self._services.store, seq, found)

    # -- settling ------------------------------------------------------------------

    def _settled(self, message: Processed) -> None:
        """Count ``message`` settled (the caller marks its dedupe key)."""
        if message.fenced:
            log.info("update_fenced", journal_seq=message.journal_seq)
        elif message.failed is not None:  # never dropped: operators see it; the journal has it
            self._quarantine(message.journal_seq, None, "processing_failed", {
                "dedupe_key": message.dedupe_key, "error": message.failed,
            })
        handed = self._handed.get((message.journal_seq, message.dedupe_key))
        if handed and message.fenced and message.epoch != self._held.epochs.get(
                self._services.ownership.of(*handed[-1].conversation)):
            return  # a copy handed out under an earlier epoch: the one waiting is another
        if handed:  # else handed out by an earlier incarnation: nothing counted here
            update = handed.pop()
            if not handed:
                del self._handed[message.journal_seq, message.dedupe_key]
            reopens = not self._window.open
            self._window.give_back(update.conversation, update.size)
            self._dirty.add(update.conversation[0])
            self._all_dirty |= reopens or self._starved
            self._starved = False
            if update.slow:
                left = self._slow.get(update.conversation, 0) - 1
                if left > 0:
                    self._slow[update.conversation] = left
                else:
                    self._slow.pop(update.conversation, None)
            if not message.fenced:  # not done: the cursor stays below it until the
                self._unsettled.settle(message.journal_seq)  # partitions held change
        self._services.flow.moved_at = time.monotonic()

    def _after_settling(self) -> None:
        """Coalesce: one pump after every settlement queued meanwhile."""
        self._advance()
        if not self._pump_armed:
            self._pump_armed = True
            self.context.tell_self(_Pump())

    def _quarantine(self, seq: int, phone_number_id: str | None, reason: str, data: Any) -> None:
        quarantine(self._services.store, seq, phone_number_id, reason, data)

    # -- the cursor -----------------------------------------------------------------

    def _settled_upto(self) -> int:
        oldest = [seq for seq in (self._unsettled.oldest(),) if seq is not None]
        behind = self._behind.oldest()
        if behind is not None:
            oldest.append(behind[0])
        return min(oldest) - 1 if oldest else self._scan

    def _advance(self) -> None:
        done = self._settled_upto()
        self._reader.forget_routes_below(done + 1)  # nothing below the cursor is read again
        self._services.flow.settled_upto = done
        self._backlog.saw(self._services.journal.last_committed - done)
        if done - self._persisted >= PERSIST_EVERY:
            self._persist(done)
        elif done > self._persisted and not self._flush_armed:
            self._flush_armed = True
            self.context.tell_self_later(PERSIST_AFTER_S, _Flush())

    def _persist(self, done: int) -> None:
        if done <= self._persisted:
            return
        held = self._held
        self._services.store.write(lambda tx: leases.advance(tx, held, done))
        self._persisted = done

    # -- what operators see -----------------------------------------------------------

    def _show(self) -> None:
        flow = self._services.flow
        flow.read_upto = self._scan
        flow.in_flight = self._window.count
        flow.in_flight_bytes = self._window.bytes
        flow.behind = len(self._behind)
        if self._services.journal.last_committed <= flow.settled_upto:
            flow.moved_at = time.monotonic()

