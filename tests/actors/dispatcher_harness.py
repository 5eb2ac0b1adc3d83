"""A Dispatcher driven by hand, one message at a time: an in-memory journal,
store, dedupe, config and registry around the real actor and the real
parse/normalize, so order, loss and window rules can be checked exactly."""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from lawhub_actors.actors import dispatcher as dispatcher_module
from lawhub_actors.actors.inbound_messages import Inbound, Processed, Settled
from lawhub_actors.actors.services import InboundFlow
from lawhub_actors.adapters import leases
from lawhub_actors.adapters.journal import Entry
from lawhub_actors.adapters.leases import Ownership
from lawhub_actors.adapters.store import Written
from lawhub_actors.simulator import traffic
from supervisors import NotRegistered

NUMBER_A = "106540352242922"  # firm-a
NUMBER_B = "107611463353033"  # firm-b


class Journal:
    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.reads = 0
        """Entries handed to readers so far (what re-reading costs)."""

    @property
    def last_committed(self) -> int:
        return len(self.entries)

    def append(self, *changes: dict[str, Any]) -> int:
        body = traffic.encode(traffic.envelope(*changes))
        self.entries.append(Entry(len(self.entries) + 1, time.time(), body))
        return len(self.entries)

    def read_after(self, seq: int, limit: int = 500, max_bytes: int | None = None) -> list[Entry]:
        got = self.entries[seq:seq + limit]
        self.reads += len(got)
        return got

    def received_at(self, seq: int) -> float | None:
        return self.entries[seq - 1].received_at if 0 < seq <= len(self.entries) else None


class Store:
    """The dispatcher's writes run against this object as their transaction."""

    def __init__(self) -> None:
        self.quarantined: list[tuple[int, str, Any]] = []
        self.cursor = 0
        self.conn = SimpleNamespace(executemany=self._cursors)

    def read(self, work: Any, *args: Any) -> Any:
        assert work is leases.cursors
        return dict.fromkeys(args[0], self.cursor)  # each partition's cursor at start

    def write(self, work: Any) -> Written[Any]:
        return Written(work(self), [])

    def _cursors(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        assert sql.startswith("UPDATE partitions SET cursor=")
        self.cursor = max([self.cursor, *(row[0] for row in rows)])

    # what the dispatcher's writes call on their transaction
    def quarantine(self, seq: int, phone_number_id: str | None, reason: str, data: Any) -> None:
        self.quarantined.append((seq, reason, data))

    def audit(self, *entry: Any) -> bool:
        return True


class Dedupe:
    def __init__(self) -> None:
        self.marked: set[str] = set()

    def seen(self, keys: list[str]) -> set[str]:
        return {key for key in keys if key in self.marked}

    def mark(self, keys: list[str]) -> None:
        self.marked.update(keys)


@dataclass(frozen=True, eq=False)
class Routes:
    numbers: dict[str, str]
    version: int

    def __call__(self, phone_number_id: str) -> str | None:
        return self.numbers.get(phone_number_id)

    def same_as(self, other: Routes) -> bool:
        return self.version == other.version


class Config:
    def __init__(self) -> None:
        self.numbers = {NUMBER_A: "firm-a", NUMBER_B: "firm-b"}
        self.version = 0

    def routes(self) -> Routes:
        return Routes(dict(self.numbers), self.version)

    def remove(self, number: str) -> None:
        """A reload that drops ``number`` (its tenant retired)."""
        del self.numbers[number]
        self.version += 1


class Registry:
    def __init__(self) -> None:
        self.sent: list[Inbound] = []
        self.gone: set[str] = set()

    def tell_batch(self, path: str, items: list[tuple[str, Inbound]], wrap: Any) -> None:
        if path in self.gone:
            raise NotRegistered(path)
        self.sent.extend(inbound for _, inbound in items)


def _settings(**inbound: Any) -> SimpleNamespace:
    values: dict[str, Any] = dict(
        conversation_window=64, tenant_window=1024, window=4096, window_bytes=64 * 2**20,
        batch_max=64, max_behind=10_000, parsed_cache_bytes=16 * 2**20, stall_after_s=120.0)
    values.update(inbound)
    return SimpleNamespace(inbound=SimpleNamespace(**values),
                           supervision=SimpleNamespace(mailbox=SimpleNamespace(capacity=10_000)))


class Harness:
    """``inbound`` overrides ``[inbound]`` keys (small windows make every rule bite)."""

    def __init__(self, wakeup: Any = None, **inbound: Any) -> None:
        self.journal, self.store, self.dedupe = Journal(), Store(), Dedupe()
        self.config, self.registry = Config(), Registry()
        self.ownership = Ownership("node-a", 1)  # one partition, held: every conversation
        self.ownership.set({0: 1})
        self.services = SimpleNamespace(
            settings=_settings(**inbound), config=self.config, store=self.store,
            journal=self.journal, dedupe=self.dedupe, flow=InboundFlow(), remote_classifier=False,
            ownership=self.ownership)
        self.to_self: list[Any] = []
        self.dispatcher = self.start(wakeup or SimpleNamespace(clear=lambda: None))

    def start(self, wakeup: Any) -> dispatcher_module.Dispatcher:
        """A (new) incarnation on the same services, started."""
        dispatcher = dispatcher_module.Dispatcher(self.services, wakeup)  # type: ignore[arg-type]
        dispatcher.context = SimpleNamespace(  # type: ignore[assignment]
            registry=self.registry, tell_self=self.to_self.append,
            tell_self_later=lambda delay_s, message: None)
        dispatcher.on_start()
        self.dispatcher = dispatcher
        self.run()
        return dispatcher

    def run(self) -> None:
        """Handle what the dispatcher sent itself."""
        while self.to_self:
            self.dispatcher.receive(self.to_self.pop(0))

    def advanced(self) -> None:
        self.dispatcher.receive(dispatcher_module.JournalAdvanced(self.journal.last_committed))
        self.run()

    def take_sent(self) -> list[Inbound]:
        sent, self.registry.sent = self.registry.sent, []
        return sent

    def settle(self, inbounds: list[Inbound], failed: dict[str, str] | None = None) -> None:
        failed = failed or {}
        self.dispatcher.receive(Settled(tuple(
            Processed(i.journal_seq, i.event.dedupe_key, failed.get(i.event.dedupe_key))
            for i in inbounds)))
        self.run()


def text(number: str, customer: str, wamid: str, body: str | None = None) -> dict[str, Any]:
    return traffic.text_message(number, customer, body or wamid, message_id=wamid)


def keys(inbounds: list[Inbound]) -> list[str]:
    return [inbound.event.dedupe_key for inbound in inbounds]
