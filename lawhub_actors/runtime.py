"""Starts and stops the application: adapters first, then the actor tree.

The runtime owns what the actors share (:class:`Services`): the journal,
the store, the dedupe fast path, the per-tenant keyring. Start order is
adapters → tree; stop order is tree (every actor drained and joined) →
adapters, so no actor ever writes to a closed store.

A reload (:meth:`AppRuntime.reconfigure`) has the running tree adopt the
spec built from the new config, then swaps the live config: only what
changed starts, stops or resizes. What left the config retires
(:mod:`lawhub_actors.usecases.retirement`).

A message an actor kept crashing on (its retries spent) is a dead letter.
An update's dead letter still settles it at the dispatcher, marked failed:
the dispatcher quarantines it for operators (the journal keeps the body)
and its conversation goes on instead of waiting for it forever.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import structlog

from lawhub_actors.actors import paths
from lawhub_actors.actors.inbound_messages import (
    JournalAdvanced,
    OwnershipChanged,
    Processed,
    Settled,
    SettlesUpdates,
)
from lawhub_actors.actors.outbound_worker import (
    OutboundStep,
    Send,
    Sweep,
    take_up_unfinished,
)
from lawhub_actors.actors.services import Services, Wakeup
from lawhub_actors.actors.tree import Retiring, Sending, root_spec
from lawhub_actors.adapters import channels, outbound_store
from lawhub_actors.adapters.assist_http import HttpClassifier
from lawhub_actors.adapters.breaker_board import breaker_board_from
from lawhub_actors.adapters.call_loop import CallLoop
from lawhub_actors.adapters.clamd import Clamd
from lawhub_actors.adapters.databases import EMBEDDED_NODE, journal_database, store_database
from lawhub_actors.adapters.dedupe import dedupe_from
from lawhub_actors.adapters.graph_media import GraphMedia
from lawhub_actors.adapters.graph_send import GraphSend
from lawhub_actors.adapters.journal import Journal
from lawhub_actors.adapters.lease_keeper import LeaseKeeper
from lawhub_actors.adapters.leases import Ownership
from lawhub_actors.adapters.media_files import MediaFiles
from lawhub_actors.adapters.media_pipeline import MediaPipeline
from lawhub_actors.adapters.rate_store import rate_store_from
from lawhub_actors.adapters.store import OnCommit, Store
from lawhub_actors.core.assist import Classifier, RuleClassifier
from lawhub_actors.core.crypto import Keyring, Sealed
from lawhub_actors.core.flow import stall
from lawhub_actors.live_config import LiveConfig
from lawhub_actors.settings import Secrets, Settings
from lawhub_actors.usecases import dead_letters
from lawhub_actors.usecases.retirement import Retirements
from lawhub_actors.usecases.sends import SendOrder, admit_send
from supervisors import MailboxFull, NodeSnapshot, NodeState, NotRegistered, Tree

log = structlog.get_logger("lawhub.runtime")

GiveUp = Callable[[BaseException | None], None]

MEDIA_DIR = "media"

JOURNAL_KEYSPACE = "_journal"
"""Bodies are sealed before their tenant is known: one key space for all."""
FOLLOW_S = 1.0
"""How often the journal is polled for what the ack path's process committed,
should its word (a control message after each commit) be lost."""


class AppRuntime:
    def __init__(
        self,
        settings: Settings,
        secrets: Secrets,
        publish: OnCommit,
        on_give_up: GiveUp | None = None,
    ) -> None:
        if secrets.master_key is None:
            raise ValueError("the runtime needs a master key (provision() creates one)")
        self.config = LiveConfig(settings)
        self._stopping = False
        self._closing = contextlib.ExitStack()
        """Each resource's close, registered as it is built: stop runs them in
        reverse, so stopping mirrors starting by construction."""
        try:
            self._build(settings, secrets, publish, on_give_up)
        except BaseException:
            self._closing.close()  # what was built before the failure
            raise

    def _build(self, settings: Settings, secrets: Secrets, publish: OnCommit,
               on_give_up: GiveUp | None) -> None:
        closing = self._closing
        keyring = keyring_of(secrets)
        data_dir = secrets.data_dir
        self._build_storage(settings, secrets, keyring, publish)
        limits = settings.limits
        redis_url = secrets.redis_url.get_secret_value() if secrets.redis_url else None
        self.dedupe = dedupe_from(redis_url, limits.dedupe_ttl_s, limits.dedupe_memory_entries)
        closing.callback(self.dedupe.close)
        self._dedupe_kind = "redis" if redis_url else "memory"
        wakeup = Wakeup(self._nudge_dispatcher)
        self.journal.on_commit = lambda seq: wakeup.signal()
        self.media_files = MediaFiles(data_dir / MEDIA_DIR, keyring,
                                      node=secrets.node_id or EMBEDDED_NODE)
        self._graph = (
            GraphMedia(secrets.graph_base_url, secrets.access_token.get_secret_value())
            if secrets.access_token is not None else None
        )
        if self._graph is not None:
            closing.callback(self._graph.close)
        scanner = (
            Clamd(limits.clamd_socket, limits.clamd_timeout_s) if limits.clamd_socket else None
        )
        pipeline = MediaPipeline(self._graph, self.media_files, scanner, limits.media_max_bytes)
        self._malware_scanning = "clamd" if scanner is not None else "off"
        if scanner is None:
            log.warning("malware_scanning_off",
                        reason="[limits] clamd_socket is not set: built-in checks only")
        if self._graph is None:
            log.warning("media_download_off", reason="LAWHUB_ACCESS_TOKEN is not set")
        self._classifier = _classifier(settings)
        remote = isinstance(self._classifier, HttpClassifier)
        if isinstance(self._classifier, HttpClassifier):
            closing.callback(self._classifier.close)
        self._build_leases(settings, secrets)
        breakers = breaker_board_from(redis_url)
        closing.callback(breakers.close)
        services = Services(self.config, self.store, self.journal, self.dedupe, self.ownership,
                            inline_classifier=None if remote else self._classifier,
                            breakers=breakers)
        self._services = services
        self.flow = services.flow
        """The dispatcher's flow control as it is now (lag, window, left behind)."""
        self._offload = (
            ThreadPoolExecutor(settings.assist.max_in_flight, thread_name_prefix="assist-call")
            if remote else None
        )
        if self._offload is not None:  # calls under way end within their timeout
            closing.callback(self._offload.shutdown, wait=True, cancel_futures=True)
        self._graph_send = (
            GraphSend(secrets.graph_base_url, secrets.access_token.get_secret_value(),
                      max_connections=limits.send_in_flight)
            if secrets.access_token is not None else None
        )
        self._send_calls = CallLoop(limits.send_in_flight, "send-calls")
        # calls under way end within their timeout (a cancelled one is taken up at the next start)
        closing.callback(self._send_calls.close, settings.server.shutdown_timeout_s)
        if self._graph_send is not None:
            self._send_calls.at_close(self._graph_send.close)
        self.rates = rate_store_from(redis_url)
        closing.callback(self.rates.close)
        sending = Sending(self.rates, self._graph_send, self._send_calls)
        self._spec = partial(root_spec, services=services, wakeup=wakeup,
                             classifier=self._classifier, media=pipeline, sending=sending,
                             offload=self._offload)
        self._reconfiguring = threading.Lock()
        self.tree = Tree(
            self._spec(settings),
            on_give_up=on_give_up,
            dead_letter=self._dead_letter,
            start_timeout_s=settings.supervision.start_timeout_s * 4,
        )
        closing.callback(lambda: self.tree.stop(
            timeout_s=self.settings.server.shutdown_timeout_s))
        self._retirements = Retirements(
            self.store, self.tree.registry, self.config,
            lambda retiring: self._adopt(self.config.current, retiring), self._reconfiguring)
        closing.callback(self._retirements.stop)

    @property
    def settings(self) -> Settings:
        """The configuration as it is now."""
        return self.config.current

    # -- live configuration ------------------------------------------------------

    def reconfigure(self, new: Settings, text: str | None = None) -> list[str]:
        """Run ``new`` (validated, with no key that needs a restart) from now
        on: the tree adopts its spec (plus what retires, see
        :mod:`lawhub_actors.usecases.retirement`), then the config is swapped. Blocks
        for the adoption; answers the actor paths that could not adopt
        (empty when all did)."""
        with self._reconfiguring:
            retiring = self._retirements.after_reload(self.config.current, new)
            problems = self._adopt(new, retiring)
            self.config.replace(new, text)
        return problems

    def _adopt(self, settings: Settings, retiring: Retiring) -> list[str]:
        """Have the tree adopt the spec of ``settings`` plus what retires; the
        paths that could not (the root's own failure to answer included:
        the tree was told, so the config goes on to be swapped)."""
        timeout_s = settings.server.shutdown_timeout_s + settings.supervision.start_timeout_s * 4
        try:
            return self.tree.adopt(self._spec(settings, retiring=retiring), timeout_s=timeout_s)
        except Exception as error:  # noqa: BLE001 - reported to the operator, never raised
            return [f"(root): {error!r}"]

    def _nudge_dispatcher(self) -> None:
        # Coalesced (at most one queued), so past the bound: never refused.
        self.tree.registry.tell(paths.DISPATCHER, JournalAdvanced(self.journal.last_committed),
                                wait=False, bounded=False)

    def _dead_letter(self, path: str, message: Any, reason: str) -> None:
        if self._stopping:  # left unsettled on purpose: the next start replays it
            return
        if isinstance(message, OutboundStep):
            self._dead_letter_send(message.id, reason)
            return
        if not isinstance(message, SettlesUpdates):
            return
        updates = message.updates()
        failed = Settled(tuple(Processed(seq, key, failed=reason) for seq, key in updates))
        try:
            self.tree.registry.tell(paths.DISPATCHER, failed, bounded=False)
        except Exception:  # noqa: BLE001 - no dispatcher: its next start replays the update
            log.warning("dead_letter_unsettled", path=path, journal_seqs=[s for s, _ in updates])

    def _dead_letter_send(self, message_id: str, reason: str) -> None:
        """A send its worker kept crashing on: to the DLQ, for operators."""
        try:
            self.store.write(lambda tx: dead_letters.abandon(tx, message_id, reason))
        except Exception:
            log.exception("dead_letter_send_unrecorded", msg_id=message_id)

    def _build_storage(self, settings: Settings, secrets: Secrets, keyring: Keyring,
                       publish: OnCommit) -> None:
        """The store, then the journal (on PostgreSQL the store's migrations
        make the journal's table)."""
        # The store hands committed events to the feed itself, in commit order.
        self.store = Store(store_database(settings, secrets), keyring, on_commit=publish)
        self._closing.callback(self.store.close)
        seal, open_ = journal_crypto(secrets, keyring)
        self.journal = Journal(
            journal_database(settings, secrets), seal=seal, open_=open_,
            batch_max=settings.storage.journal_batch_max,
            tail_bytes=settings.storage.journal_tail_bytes,
        )  # shared (Journal.share) once the ack path's process is started
        self._closing.callback(self.journal.close)

    def _build_leases(self, settings: Settings, secrets: Secrets) -> None:
        self._telling = ThreadPoolExecutor(1, thread_name_prefix="cluster-tell")
        """Telling other nodes of sends, and sweeping for theirs: off the loop and the leases."""
        self._closing.callback(self._telling.shutdown, wait=True, cancel_futures=True)
        self._sweeping = threading.Lock()
        self._sweep = Sweep()
        self.ownership = Ownership(secrets.node_id or EMBEDDED_NODE, settings.cluster.partitions)
        self.leases = LeaseKeeper(self.store, self.ownership,
                                  address=secrets.node_address or socket.gethostname(),
                                  lease_s=settings.cluster.lease_s,
                                  on_change=lambda held: self._ownership_changed(),
                                  on_tick=self._sweep_sends)
        self._closing.callback(self.leases.stop)  # after the tree stopped: nothing in flight

    def _ownership_changed(self) -> None:
        """The partitions held changed (the lease keeper's thread)."""
        # Not started yet, or stopping: its (next) start reads the cursors.
        with contextlib.suppress(NotRegistered):
            self.tree.registry.tell(paths.DISPATCHER, OwnershipChanged(), bounded=False)
            take_up_unfinished(self.store, self.tree.registry, self.ownership)

    def start(self) -> AppRuntime:
        """Take a share of the partitions, start the tree, then hand every
        unfinished send to its worker in accepted order (before the web side
        accepts new ones)."""
        self.leases.start()
        self.tree.start()
        if resumed := take_up_unfinished(self.store, self.tree.registry, self.ownership):
            log.info("outbound_resumed", messages=resumed)
        return self

    def admit(self, order: SendOrder) -> tuple[str, bool]:
        """A lawyer's send through every admission check (blocking: from a
        worker thread); ``(our id, new)``. Hand a new one over with :meth:`send`."""
        return admit_send(self.store, self.settings, self.circuit, order)

    def circuit(self, phone_number_id: str) -> tuple[str, float]:
        """The number's circuit as its breaker last left it (never an ask). A
        breaker not started yet counts as closed: the worker asks it before
        every call anyway."""
        view = self._services.circuits.get(phone_number_id)
        return ("closed", 0.0) if view is None else view.now()

    def send(self, tenant: str, message_id: str, recipient: str) -> None:
        """Hand an accepted message to its worker (keyed by recipient), or,
        when the recipient's partition is another node's, tell that node.
        Never blocks: a full queue leaves it pending in the store, logged
        (as does a lost notice: the owner's sweep finds it)."""
        partition = self.ownership.of(tenant, recipient)
        if partition not in self.ownership.held().epochs:  # off the caller's (event loop) thread
            self._telling.submit(self._notify_send, partition, message_id)
            return
        try:
            self.tree.registry.tell(paths.WORKERS, Send(message_id, recipient), recipient,
                                    wait=False)
        except MailboxFull:
            log.warning("outbound_queue_full", msg_id=message_id)

    def _notify_send(self, partition: int, message_id: str) -> None:
        try:
            self.store.apart(lambda tx: self.store.database.notify(
                tx.conn, channels.SENDS, f"{partition} {message_id}"))
        except Exception as error:  # noqa: BLE001 - the owner's sweep finds it
            log.warning("send_notice_lost", msg_id=message_id, error=repr(error))

    def heard_send(self, partition: int, message_id: str) -> None:
        """Another node accepted a message for a partition this node may hold."""
        if partition not in self.ownership.held().epochs:
            return
        message = self.store.read_tx(outbound_store.load, message_id)
        if message is not None:
            self.send(message.tenant, message.id, message.recipient)

    def _sweep_sends(self) -> None:
        """Several nodes: take up what other nodes accepted for the partitions
        held (a lost notice, a partition just taken over) — on a thread of
        its own, one sweep at a time: a long one never delays the leases."""
        if self.store.database.name == "postgres" and self._sweeping.acquire(blocking=False):
            def sweep() -> None:
                try:
                    take_up_unfinished(self.store, self.tree.registry, self.ownership,
                                       self._sweep)
                except Exception as error:  # noqa: BLE001 - the next tick sweeps again
                    log.warning("send_sweep_failed", error=repr(error))
                finally:
                    self._sweeping.release()

            self._telling.submit(sweep)

    def stop(self) -> None:
        """Close everything in the reverse of the order it was built: the
        retirements' watcher, the tree, then the adapters the actors used."""
        self._stopping = True
        self._closing.close()

    def ready(self) -> bool:
        root = self.tree.registry.find("")
        running = root is not None and root.state is NodeState.RUNNING
        return running and not self.tree.gave_up.is_set()

    def backlog(self) -> dict[str, Any]:
        """The inbound flow as operators see it: journal entries not yet
        processed and the age of the oldest, what is handed out, what was
        passed over, and why processing looks stuck (``stalled``), if it does."""
        flow, journal = self.flow, self.journal
        lag = max(0, journal.last_committed - flow.settled_upto)
        oldest = journal.received_at(flow.settled_upto + 1) if lag else None
        return {
            "lag_entries": lag,
            "oldest_unprocessed_s": round(max(0.0, time.time() - oldest), 3) if oldest else 0.0,
            "in_flight": flow.in_flight,
            "in_flight_bytes": flow.in_flight_bytes,
            "left_behind": flow.behind,
            "read_upto": flow.read_upto,
            "settled_upto": flow.settled_upto,
            "stalled": stall(lag, time.monotonic() - flow.moved_at,
                             self.settings.inbound.stall_after_s),
        }

    def services(self) -> dict[str, str]:
        """Which optional parts run, for operators."""
        return {
            "malware_scanning": self._malware_scanning,
            "media_download": "on" if self._graph is not None else "off",
            "dedupe": self._dedupe_kind,
        }

    def snapshot(self) -> NodeSnapshot:
        return self.tree.snapshot()


def keyring_of(secrets: Secrets) -> Keyring:
    """The per-tenant keys from the master key (and the retired ones)."""
    if secrets.master_key is None:
        raise ValueError("no master key (provision() creates one)")
    return Keyring(
        {
            **{v: key.get_secret_value() for v, key in secrets.retired_master_keys.items()},
            secrets.master_key_version: secrets.master_key.get_secret_value(),
        },
        secrets.master_key_version,
    )


def journal_crypto(secrets: Secrets, keyring: Keyring | None = None) -> tuple[
        Callable[[bytes], tuple[str, bytes]], Callable[[str, bytes], bytes]]:
    """How journal bodies are sealed and opened (one key space: the tenant is
    not known before the body is parsed); the ack path's process uses it too."""
    keys = keyring or keyring_of(secrets)
    return (lambda body: _pair(keys.seal(JOURNAL_KEYSPACE, body)),
            lambda key_id, blob: keys.open(JOURNAL_KEYSPACE, key_id, blob))


def _classifier(settings: Settings) -> Classifier:
    if settings.assist.url is None:
        return RuleClassifier()
    return HttpClassifier(settings.assist.url, settings.assist.timeout_s)


def _pair(sealed: Sealed) -> tuple[str, bytes]:
    return sealed.key_id, sealed.blob
