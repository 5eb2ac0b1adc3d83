"""The dispatcher: from committed journal entries to conversation shards.

It reads the journal in order, normalizes each entry, drops updates the
dedupe fast path has already seen, quarantines what belongs to no tenant,
and routes every update to its tenant's session pool keyed by customer, so
one conversation is handled by one shard in arrival order.

A slow step (checking a file, a remote classification) parks only its conversation:
while an update that takes one is unsettled, later updates of the same
conversation wait here, in order, and every other conversation goes on.
The stash lives in the dispatcher rather than in a shard so that it
survives a shard's restart and a pool's resize, and a parked update is
never stored before the one it waits for.

The cursor (every entry at or below it fully processed) advances only when
the shards report each update durable, and is committed with the store;
on (re)start everything after it is read again. Replays are harmless:
every effect is idempotent in the store, and dedupe keys are marked only
after their effect is durable.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import structlog

from lawhub_actors.actors.messages import (
    Inbound,
    JournalAdvanced,
    Processed,
    Routable,
    takes_slow_step,
)
from lawhub_actors.actors.services import Services, Wakeup
from lawhub_actors.adapters import store_reads
from lawhub_actors.adapters.sqlite_journal import Entry
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.events import (
    AccountErrors,
    InboundMessage,
    OtherChange,
    PreferenceUpdate,
    StatusUpdate,
)
from lawhub_actors.core.normalize import normalize
from lawhub_actors.core.payload import PayloadError, parse
from supervisors import Actor, NotRegistered

log = structlog.get_logger("lawhub.dispatcher")

CURSOR = "dispatcher"
PATH = "inbound/dispatcher"
PERSIST_EVERY = 256
PERSIST_AFTER_S = 0.1
"""Cursor commits are batched (a crash replays what came after the last
one, harmlessly): every PERSIST_EVERY entries, or PERSIST_AFTER_S after
progress stops."""


class _Flush:
    """Self-sent: commit the cursor if it moved since the last commit."""


Conversation = tuple[str, str]
"""(tenant, key the session pool hashes on)."""


def sessions_path(tenant: str) -> str:
    return f"inbound/sessions/{tenant}"


def conversation_of(event: Routable) -> Conversation:
    """Statuses go with their recipient's conversation (their wamid when Meta
    names no recipient); everything else with its customer."""
    key = (event.recipient or event.wamid) if isinstance(event, StatusUpdate) else event.customer
    return event.tenant, key


@dataclass(frozen=True, slots=True)
class InFlight:
    """Ask: how many of the tenant's updates wait on a slow step here (a
    removed tenant's actors retire only once none do)."""

    tenant: str


class Dispatcher(Actor):
    def __init__(self, services: Services, wakeup: Wakeup) -> None:
        self._services = services
        self._wakeup = wakeup
        self._pending: dict[int, int] = {}
        self._flush_armed = False
        self._slow: dict[tuple[int, str], Conversation] = {}
        """(journal seq, dedupe key) of each unsettled slow update → its conversation."""
        self._parked: dict[Conversation, deque[tuple[int, Routable]]] = {}
        """Conversations with a slow update in flight, and what waits behind it."""

    def on_start(self) -> None:
        self._persisted = self._services.store.read(store_reads.cursor, CURSOR)
        self._read_upto = self._persisted
        if self._read_upto:
            log.info("dispatcher_resumes", journal_seq=self._read_upto)
        self._drain()

    def receive(self, message: Any) -> Any:
        if isinstance(message, JournalAdvanced):
            self._wakeup.clear()
            self._drain()
        elif isinstance(message, Processed):
            self._settled(message)
        elif isinstance(message, InFlight):
            return sum(1 for tenant, _ in self._slow.values() if tenant == message.tenant)
        elif isinstance(message, _Flush):
            self._flush_armed = False
            self._persist(self._settled_upto())
        else:
            super().receive(message)

    # -- reading ------------------------------------------------------------------

    def _drain(self) -> None:
        while entries := self._services.journal.read_after(self._read_upto):
            for entry in entries:
                self._dispatch(entry)

    def _dispatch(self, entry: Entry) -> None:
        self._read_upto = entry.seq
        try:
            batch = normalize(parse(entry.body), self._services.config.tenant_id_for)
        except PayloadError as error:
            self._quarantine(entry.seq, None, error.code, {"error": str(error)})
            self._advance()
            return
        for warning in batch.warnings:
            log.warning("normalize_warning", warning=warning, journal_seq=entry.seq)
        for item in batch.quarantined:
            self._quarantine(entry.seq, item.phone_number_id, item.reason, {
                "waba_id": item.waba_id, "field": item.field, "change": item.change,
            })
        routable = [
            event for event in batch.events
            if isinstance(event, InboundMessage | StatusUpdate | PreferenceUpdate)
        ]
        seen = self._services.dedupe.seen([event.dedupe_key for event in routable])
        sent = 0
        for event in routable:
            if event.dedupe_key not in seen and self._route(entry.seq, event):
                sent += 1
        self._record_account_changes(entry.seq, batch.events)
        if sent:
            self._pending[entry.seq] = sent
        self._advance()

    def _route(self, seq: int, event: Routable) -> bool:
        """Send the update to its shard, or park it behind its conversation's
        slow update; whether it is now pending."""
        conversation = conversation_of(event)
        parked = self._parked.get(conversation)
        if parked is not None:
            parked.append((seq, event))
            return True
        return self._send(seq, event, conversation)

    def _send(self, seq: int, event: Routable, conversation: Conversation) -> bool:
        try:
            self.context.registry.tell(
                sessions_path(event.tenant), Inbound(seq, event), key=conversation[1]
            )
        except NotRegistered:  # the tenant left the config while its updates waited
            self._quarantine(seq, event.phone_number_id, "tenant_removed", {"tenant": event.tenant})
            return False
        if takes_slow_step(event, remote_classifier=self._services.remote_classifier):
            self._slow[seq, event.dedupe_key] = conversation
            self._parked[conversation] = deque()
        return True

    def _settled(self, message: Processed) -> None:
        if message.failed is None:
            self._services.dedupe.mark([message.dedupe_key])
        else:  # never silently dropped: operators see it, the journal keeps the body
            self._quarantine(message.journal_seq, None, "processing_failed", {
                "dedupe_key": message.dedupe_key, "error": message.failed,
            })
        self._done(message.journal_seq)
        conversation = self._slow.pop((message.journal_seq, message.dedupe_key), None)
        if conversation is not None:
            self._unpark(conversation)

    def _unpark(self, conversation: Conversation) -> None:
        """Send what waited, in order, up to the next slow update."""
        waiting = self._parked.pop(conversation, deque())
        while waiting:
            seq, event = waiting.popleft()
            if not self._send(seq, event, conversation):
                self._done(seq)
            elif conversation in self._parked:  # a slow one again: the rest wait on
                self._parked[conversation] = waiting
                return

    def _record_account_changes(self, seq: int, events: tuple[object, ...]) -> None:
        changes = [e for e in events if isinstance(e, AccountErrors | OtherChange)]
        if not changes:
            return
        def record(tx: Tx) -> None:
            for index, event in enumerate(changes):
                tenant = event.tenant or "_operators"
                if isinstance(event, AccountErrors):
                    data: dict[str, Any] = {"errors": [
                        {"code": e.code, "title": e.title, "message": e.message,
                         "details": e.details} for e in event.errors
                    ]}
                    kind = "account_errors"
                else:
                    data, kind = {"field": event.field, "value": dict(event.value)}, event.field
                tx.audit(f"journal:{seq}:{index}", tenant, kind, event.phone_number_id or "", data)

        self._services.store.write(record)

    def _quarantine(self, seq: int, phone_number_id: str | None, reason: str, data: Any) -> None:
        log.warning("quarantined", journal_seq=seq, phone_number_id=phone_number_id, reason=reason)
        self._services.store.write(lambda tx: tx.quarantine(seq, phone_number_id, reason, data))

    # -- the cursor -----------------------------------------------------------------

    def _done(self, seq: int) -> None:
        left = self._pending.get(seq, 0) - 1
        if left > 0:
            self._pending[seq] = left
        else:
            self._pending.pop(seq, None)
        self._advance()

    def _settled_upto(self) -> int:
        # Entries are dispatched in increasing order and dicts keep insertion
        # order: the first pending key is the smallest (O(1), not min()).
        return next(iter(self._pending)) - 1 if self._pending else self._read_upto

    def _advance(self) -> None:
        done = self._settled_upto()
        if done - self._persisted >= PERSIST_EVERY:
            self._persist(done)
        elif done > self._persisted and not self._flush_armed:
            self._flush_armed = True
            self.context.tell_self_later(PERSIST_AFTER_S, _Flush())

    def _persist(self, done: int) -> None:
        if done <= self._persisted:
            return
        self._services.store.write(lambda tx: tx.set_cursor(CURSOR, done))
        self._persisted = done
