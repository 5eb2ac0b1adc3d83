"""Reading a journal entry into the updates the dispatcher hands out.

An entry is parsed and normalized with the routes (number → tenant) of the
config; its routable updates (messages, statuses, preference changes) get
their conversation, dedupe key, share of the body's bytes and whether they
take a slow step. What a first read finds besides updates (a payload that
cannot be parsed, quarantined changes, warnings, account changes) is
handed back for the dispatcher to record; a read again never records twice.

Entries are read again when their conversation was left behind: the parsed
form is kept a while (within ``[inbound] parsed_cache_bytes``), and an
entry is always resolved with the routes it was *first* read with, so a
number that left the config meanwhile cannot shift the positions of the
updates left behind.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from lawhub_actors.actors.inbound_messages import Routable, takes_slow_step
from lawhub_actors.actors.services import Services
from lawhub_actors.adapters.journal import Entry
from lawhub_actors.core.events import InboundMessage, PreferenceUpdate, StatusUpdate
from lawhub_actors.core.flow import Conversation
from lawhub_actors.core.normalize import Batch, normalize
from lawhub_actors.core.payload import PayloadError, parse
from lawhub_actors.live_config import Routes


def conversation_of(event: Routable) -> Conversation:
    """Statuses go with their recipient's conversation (their wamid when Meta
    names no recipient); everything else with its customer."""
    key = (event.recipient or event.wamid) if isinstance(event, StatusUpdate) else event.customer
    return event.tenant, key


@dataclass(frozen=True, slots=True)
class Update:
    index: int
    conversation: Conversation
    event: Routable
    key: str
    """Its dedupe key (computed once)."""
    size: int
    """The update's share of its body's bytes."""
    slow: bool


@dataclass(frozen=True, slots=True)
class Read:
    seq: int
    updates: tuple[Update, ...]
    size: int


FirstFound = Batch | PayloadError
"""What a first read found for the dispatcher to record: the normalized
batch (its quarantined changes, warnings, account changes), or why the
payload could not be parsed."""
Record = Callable[[int, FirstFound], None]


class EntryReader:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._parsed: OrderedDict[int, Read] = OrderedDict()
        self._parsed_bytes = 0
        self._routes: list[tuple[int, Routes]] = []
        """(first entry read with them, routes), oldest first."""

    def read(self, entry: Entry, *, first: Record | None) -> Read:
        """The entry's updates (parsed once, kept a while for reading again).
        The first time (``first`` given), what it found besides updates is
        handed to ``first`` before anything else is done with it."""
        cached = self.cached(entry.seq)
        if cached is not None:
            return cached
        try:
            batch = normalize(parse(entry.body),
                              self._routes_of(entry.seq, first=first is not None))
        except PayloadError as error:
            if first is not None:
                first(entry.seq, error)
            return Read(entry.seq, (), 0)
        if first is not None:
            first(entry.seq, batch)
        routable = [
            event for event in batch.events
            if isinstance(event, InboundMessage | StatusUpdate | PreferenceUpdate)
        ]
        share = max(1, len(entry.body) // max(1, len(routable)))
        remote = self._services.remote_classifier
        read = Read(entry.seq, tuple(
            Update(index, conversation_of(event), event, event.dedupe_key, share,
                   takes_slow_step(event, remote_classifier=remote))
            for index, event in enumerate(routable)
        ), len(entry.body))
        self._remember(read)
        return read

    def cached(self, seq: int) -> Read | None:
        read = self._parsed.get(seq)
        if read is not None:
            self._parsed.move_to_end(seq)
        return read

    def forget_routes_below(self, seq: int) -> None:
        """Entries below ``seq`` are never read again: drop the routes only they used."""
        generations = self._routes
        while len(generations) > 1 and generations[1][0] <= seq:
            generations.pop(0)

    def _routes_of(self, seq: int, *, first: bool) -> Routes:
        generations = self._routes
        if first:
            routes = self._services.config.routes()
            if not generations or not generations[-1][1].same_as(routes):
                generations.append((seq, routes))
            return generations[-1][1]
        at = bisect.bisect_right(generations, seq, key=lambda generation: generation[0]) - 1
        return generations[max(at, 0)][1] if generations else self._services.config.routes()

    def _remember(self, read: Read) -> None:
        budget = self._services.settings.inbound.parsed_cache_bytes
        if not read.updates or read.size > budget:
            return
        self._parsed[read.seq] = read
        self._parsed_bytes += read.size
        while self._parsed_bytes > budget:
            _, dropped = self._parsed.popitem(last=False)
            self._parsed_bytes -= dropped.size
