"""Outbound: limiters and breakers per phone number, and the sending workers.

::

    outbound (one_for_one)
    ├── limiters/<phone number id>   GCRA permits: the number's throughput and each
    │                                recipient's pair rate (memory, or Redis shared)
    ├── breakers/<phone number id>   closed / open / half-open, per number
    └── workers                      hash pool by recipient: one client's messages leave
                                     in the order they were accepted

A worker takes one message per recipient at a time (the others of that
recipient wait, in order, in the worker); other recipients go on. For each
message: the breaker (open: try again when it half-opens), a permit from
the limiter for the recipient's pair-rate slot (a wait: a message to itself
after it, never a sleep), then the Graph call on a bounded pool of threads,
which takes the number's throughput slot right before it leaves, so a slow
answer blocks no other recipient and a busy worker never makes sends bunch
up above the rate. The answer is classified by Meta's code first (``send_errors``):
sent → the wamid is stored before anything else; retryable → backoff and
again; 131056 → that recipient only, 4^n s; terminal → the dead-letter
queue (and, for a broken token or account, the breaker trips); a 5xx →
``unknown``: Meta may have sent it, so the worker first waits for the
status webhook that carries our id, and sends again only if none came.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog

from lawhub_actors.actors.services import Services
from lawhub_actors.adapters import outbound_store
from lawhub_actors.adapters.graph_send import GraphSend, SendFailed, Sent
from lawhub_actors.adapters.outbound_store import Outbound
from lawhub_actors.adapters.rate_store import RateStore
from lawhub_actors.adapters.sqlite_store import Store
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core import breaker
from lawhub_actors.core.accept import TIER_WINDOW_S
from lawhub_actors.core.gcra import Rate
from lawhub_actors.core.retry import backoff_delay
from lawhub_actors.core.send_errors import SendClass, classify_send, recipient_backoff
from lawhub_actors.settings import Breaker as BreakerTuning
from lawhub_actors.settings import Limits, PhoneNumber, Settings
from supervisors import Actor, MailboxFull, NotRegistered, Registry

log = structlog.get_logger("lawhub.outbound")

WORKERS_PATH = "outbound/workers"
ASK_TIMEOUT_S = 5.0
FINISHED = frozenset({"sent", "dead", "discarded"})
LATE_RESERVATIONS = 4
"""Slots a call may take in turn when it keeps waking late (then it goes)."""
TIER_REFRESH_S = 5.0
"""How often a limiter re-reads its number's tier use for operators."""
_tickets = itertools.count(1)
"""Tells one limiter incarnation's refresh ticks from another's."""


def limiter_path(phone_number_id: str) -> str:
    return f"outbound/limiters/{phone_number_id}"


def breaker_path(phone_number_id: str) -> str:
    return f"outbound/breakers/{phone_number_id}"


# -- limiter -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PairPermit:
    """Ask: seconds until the recipient's pair-rate slot (reserved now); the
    recipient by its ref (the limiter's state may live in Redis: no number)."""

    recipient: str


@dataclass(frozen=True, slots=True)
class ThroughputPermit:
    """Ask, right before a call leaves: ``(seconds to wait, interval)`` for
    the number's throughput slot (reserved now)."""


def throughput_rate(number: PhoneNumber, limits: Limits) -> Rate:
    """The number's throughput, less the headroom kept for late departures."""
    return Rate(number.throughput_mps * (1.0 - limits.throughput_headroom))


def pair_rate(limits: Limits) -> Rate:
    """Meta's pair rate: ``pair_rate_per_6s`` messages per 6 s to one customer."""
    return Rate.every(6.0 / limits.pair_rate_per_6s, burst=limits.pair_burst)


@dataclass(frozen=True, slots=True)
class _Refresh:
    """Self-sent every ``TIER_REFRESH_S``: show the tier's use again. Carries
    its incarnation, so a restarted limiter does not tick twice."""

    owner: int


class NumberLimiter(Actor):
    """One business number's limits: throughput (GCRA at ``throughput_mps``)
    and the pair rate to each recipient, reserved separately: the pair slot
    when a message is taken up, the throughput slot by the call itself just
    before it leaves (reserving both at once would hold the whole number's
    throughput until one busy recipient's slot came round).

    Rates follow the live config (a reload retunes them; reservations made
    keep their place). A number that left the config keeps its last rates
    while its last sends finish."""

    def __init__(self, services: Services, number: PhoneNumber, store: RateStore) -> None:
        self._services = services
        self._number = number
        self._store = store
        self._seen: Settings | None = None
        self._throughput = self._pair = Rate(1.0)
        self._tier_users = 0
        self._tier_read_at = -TIER_REFRESH_S
        self._ticket = next(_tickets)
        self.granted = 0
        self.waited_s = 0.0

    def on_start(self) -> None:
        self._follow_config()
        self.context.tell_self_later(TIER_REFRESH_S, _Refresh(self._ticket))

    def receive(self, message: Any) -> Any:
        self._follow_config()
        if isinstance(message, _Refresh):  # the 24-hour window moves even when nothing is sent
            if message.owner == self._ticket:
                self._show()
                self.context.tell_self_later(TIER_REFRESH_S, message)
            return None
        if isinstance(message, PairPermit):
            return self._store.reserve(f"pair:{self._number.id}:{message.recipient}", self._pair)
        if isinstance(message, ThroughputPermit):
            wait = self._store.reserve(f"tp:{self._number.id}", self._throughput)
            self.granted += 1
            self.waited_s += wait
            self._show()
            return wait, self._throughput.interval
        return super().receive(message)

    def _follow_config(self) -> None:
        settings = self._services.settings
        if settings is self._seen:
            return
        self._seen = settings
        self._number = settings.phone_number(self._number.id) or self._number
        self._throughput = throughput_rate(self._number, settings.limits)
        self._pair = pair_rate(settings.limits)
        self._tier_read_at = -TIER_REFRESH_S
        self._show()

    def _show(self) -> None:
        """Operators' view: permits, waits, the rate now, and the tier's use
        (unique users in the moving 24 h, read at most every few seconds)."""
        now = time.monotonic()
        if now - self._tier_read_at >= TIER_REFRESH_S:
            self._tier_read_at = now
            number_id = self._number.id
            self._tier_users = self._services.store.read_tx(
                lambda tx: outbound_store.tier_usage(tx, number_id, "", tx.now - TIER_WINDOW_S))[0]
        self.context.show(permits=self.granted, waited_s=round(self.waited_s, 3),
                          rate_per_s=round(self._throughput.per_second, 3),
                          tier=self._number.tier, tier_limit=self._number.unique_users_per_24h,
                          tier_users=self._tier_users)


# -- breaker -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MayCall:
    """Ask: ``(allowed, seconds until it may be tried again)``."""


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    trip: bool = False


@dataclass(frozen=True, slots=True)
class CircuitState:
    """Ask, read-only (the API's check): ``(name, retry_after_s)``."""


def breaker_policy(tuning: BreakerTuning) -> breaker.BreakerPolicy:
    return breaker.BreakerPolicy(
        failure_threshold=tuning.failure_threshold, failure_rate=tuning.failure_rate,
        window=tuning.window, cooldown_s=tuning.cooldown_s,
        cooldown_max_s=tuning.cooldown_max_s, half_open_probes=tuning.half_open_probes,
    )


class NumberBreaker(Actor):
    """The number's circuit; its thresholds follow the live ``[breaker]``
    config without resetting the state (an open circuit stays open)."""

    def __init__(self, services: Services, tenant: str, phone_number_id: str,
                 clock: Callable[[], float]) -> None:
        self._services = services
        self._tenant = tenant
        self._number = phone_number_id
        self._tuning = services.settings.breaker
        self._state = breaker.BreakerState(breaker_policy(self._tuning))
        self._clock = clock

    def receive(self, message: Any) -> Any:
        self._follow_config()
        now = self._clock()
        if isinstance(message, MayCall):
            allowed, new = breaker.may_call(self._state, now)
            self._move(new, now)
            return allowed, breaker.retry_after(self._state, now)
        if isinstance(message, Outcome):
            self._move(breaker.record(self._state, now, message.ok, trip=message.trip), now)
            return None
        if isinstance(message, CircuitState):
            current = breaker.advance(self._state, now)
            return current.name.value, breaker.retry_after(current, now)
        return super().receive(message)

    def on_start(self) -> None:
        self.context.show(circuit=self._state.name.value, next_probe_at=None)

    def _follow_config(self) -> None:
        settings = self._services.settings
        if settings.breaker is not self._tuning:
            self._tuning = settings.breaker
            self._state = replace(self._state, policy=breaker_policy(self._tuning))
        self._tenant = settings.tenant_id_for(self._number) or self._tenant

    def _move(self, new: breaker.BreakerState, now: float) -> None:
        old, self._state = self._state, new
        if old.name is new.name:
            return
        wait = breaker.retry_after(new, now)
        probe_at = datetime.fromtimestamp(time.time() + wait, UTC).isoformat() if wait else None
        self.context.show(circuit=new.name.value, next_probe_at=probe_at)
        log.warning("circuit_changed", tenant=self._tenant, phone_number_id=self._number,
                    circuit=new.name.value)
        data = {"phone_number_id": self._number, "from": old.name.value, "to": new.name.value,
                "retry_after_s": round(breaker.retry_after(new, now), 3)}
        tenant = self._tenant
        self._services.store.write(lambda tx: tx.emit(tenant, "circuit.changed", data))


# -- workers -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Take up an outbound message (accepted, recovered at start, or replayed)."""

    id: str
    recipient: str


@dataclass(frozen=True, slots=True)
class _Begin:
    id: str


@dataclass(frozen=True, slots=True)
class _PairSlot:
    """The recipient's pair-rate slot has come: the throughput permit next."""

    id: str


@dataclass(frozen=True, slots=True)
class _Done:
    id: str
    outcome: Future[Sent | SendFailed]


OutboundStep = Send | _Begin | _PairSlot | _Done
"""Worker messages about one outbound message (``.id``): a dead letter of
any of them dead-letters that message."""


def take_up_unfinished(store: Store, registry: Registry) -> int:
    """Hand every message not yet sent nor dead to its worker, in accepted
    order; how many. Never blocks: a full queue leaves a message pending in
    the store, logged."""
    unfinished = store.read_tx(outbound_store.unfinished)
    for message_id, _tenant, recipient in unfinished:
        try:
            registry.tell(WORKERS_PATH, Send(message_id, recipient), key=recipient, wait=False)
        except MailboxFull:
            log.warning("outbound_queue_full", msg_id=message_id)
    return len(unfinished)


class OutboundWorker(Actor):
    def __init__(self, services: Services, graph: GraphSend | None, calls: Executor,
                 uniform: Callable[[], float] = random.random) -> None:
        self._services = services
        self._graph = graph
        self._calls = calls
        self._uniform = uniform
        self._queues: dict[str, deque[str]] = {}
        """Per recipient: the message in progress first, then those waiting."""
        self._recipient_of: dict[str, str] = {}
        self._graced: set[str] = set()
        """Unknown outcomes whose grace for a status webhook is running."""

    def on_start(self) -> None:
        """After a restart (its queues lost with the old incarnation), take
        up every unfinished message again, each to its recipient's worker in
        accepted order; repeats are ignored. At the process's start the
        runtime does this once the whole tree runs."""
        if self.context.registry.get(self.context.path).restarts.total > 0:
            take_up_unfinished(self._services.store, self.context.registry)

    def receive(self, message: Any) -> Any:
        if isinstance(message, Send):
            queue = self._queues.setdefault(message.recipient, deque())
            if message.id in queue:
                return None  # already in hand or waiting
            queue.append(message.id)
            self._recipient_of[message.id] = message.recipient
            if len(queue) == 1:
                self._begin(message.id)
        elif isinstance(message, _Begin):
            self._begin(message.id)
        elif isinstance(message, _PairSlot):
            self._fire(message.id)
        elif isinstance(message, _Done):
            self._done(message.id, message.outcome)
        else:
            return super().receive(message)
        return None

    # -- the steps ---------------------------------------------------------------

    def _load(self, message_id: str) -> Outbound | None:
        return self._services.store.read_tx(lambda tx: outbound_store.load(tx, message_id))

    def _begin(self, message_id: str) -> None:
        message = self._load(message_id)
        if message is None or message.state in FINISHED:
            self._finish(message_id)
            return
        # Meta may have sent it (a 5xx, or a crash mid-call): if a status with our id
        # settled it meanwhile, it is 'sent' now; otherwise the webhook gets a grace
        # period before a second send.
        unsure = message.state in ("sending", "unknown") and message.attempts > 0
        if unsure and not self._graceful(message):
            return
        try:
            allowed, retry_after = self._ask(breaker_path(message.phone_number_id), MayCall())
        except NotRegistered:
            self._number_removed(message)
            return
        if not allowed:
            self.context.tell_self_later(max(retry_after, 0.05), _Begin(message_id))
            return
        wait = self._ask(limiter_path(message.phone_number_id),
                         PairPermit(message.recipient_ref))
        if wait > 0:
            self.context.tell_self_later(wait, _PairSlot(message_id))
        else:
            self._fire(message_id)

    def _graceful(self, message: Outbound) -> bool:
        """Whether the grace for an unsure outcome is over (then send again);
        the first time, start it: look again after a backoff delay."""
        if message.id in self._graced:
            self._graced.discard(message.id)
            return True
        self._graced.add(message.id)
        self.context.tell_self_later(self._grace(message.attempts), _Begin(message.id))
        return False

    def _fire(self, message_id: str) -> None:
        """Hand the call to the call pool: it takes the number's throughput
        slot itself, just before it leaves."""
        def sending(tx: Tx) -> Outbound | None:
            message = outbound_store.load(tx, message_id)
            if message is None or message.state in FINISHED:
                return None
            outbound_store.set_state(tx, message_id, "sending", attempt=True)
            return message

        message = self._services.store.write(sending).value
        if message is None:
            self._finish(message_id)
            return
        if self._graph is None:
            self._dead(message, "terminal", {"status": None, "code": None,
                                             "message": "LAWHUB_ACCESS_TOKEN is not set"})
            return
        registry, path = self.context.registry, self.context.path
        call = self._calls.submit(self._call, message, registry)

        def back(outcome: Future[Sent | SendFailed]) -> None:
            try:
                registry.tell(path, _Done(message_id, outcome))
            except NotRegistered:  # stopping: 'sending' is taken up again at the next start
                log.info("send_answer_dropped_at_shutdown", msg_id=message_id)

        call.add_done_callback(back)

    def _call(self, message: Outbound, registry: Registry) -> Sent | SendFailed:
        """On a call thread: wait for a throughput slot, then call Meta. A
        thread that wakes more than half an interval late takes a new slot
        (behind those reserved meanwhile) instead of bunching up with the
        next send above the number's rate."""
        assert self._graph is not None
        for _ in range(LATE_RESERVATIONS):
            wait, interval = registry.ask(limiter_path(message.phone_number_id),
                                          ThroughputPermit(), timeout=ASK_TIMEOUT_S)
            slot = time.monotonic() + wait
            if wait > 0:
                time.sleep(wait)
            if time.monotonic() - slot <= interval / 2:
                break
        content = message.content
        if content["type"] == "text":
            return self._graph.text(message.phone_number_id, message.recipient,
                                    content["text"], callback=message.id)
        template = content["template"]
        return self._graph.template(message.phone_number_id, message.recipient,
                                    template["name"], template["language"], template["params"],
                                    callback=message.id)

    def _done(self, message_id: str, outcome: Future[Sent | SendFailed]) -> None:
        message = self._load(message_id)
        if message is None:
            self._finish(message_id)
            return
        try:
            result = outcome.result()
        except NotRegistered:  # its limiter went while the call waited for a slot
            self._number_removed(message)
            return
        breaker_of = breaker_path(message.phone_number_id)
        if isinstance(result, Sent):
            self._tell(breaker_of, Outcome(ok=True))
            self._sent(message, result.wamid)
            return
        kind = classify_send(result.status, result.code, timed_out=result.title == "timeout")
        error = {"status": result.status, "code": result.code, "title": result.title,
                 "message": result.message, "details": result.details}
        log.info("send_failed", tenant=message.tenant, msg_id=message.id, status=result.status,
                 code=result.code, kind=kind.value, attempt=message.attempts)
        # A terminal error about this message, or the pair rate of this recipient,
        # says the number and its token work: a success for the breaker (which
        # also answers a half-open probe).
        number_works = kind in (SendClass.RETRY_RECIPIENT, SendClass.TERMINAL)
        retry = self._services.settings.retry
        self._tell(breaker_of, Outcome(ok=number_works, trip=kind is SendClass.TERMINAL_BREAK))
        if kind in (SendClass.TERMINAL, SendClass.TERMINAL_BREAK):
            self._dead(message, "terminal", error)
        elif message.attempts >= retry.max_attempts:
            self._dead(message, "retries_exhausted", error)
        elif kind is SendClass.UNKNOWN_OUTCOME:
            self._services.store.write(
                lambda tx: outbound_store.set_state(tx, message.id, "unknown"))
            self._graced.add(message.id)  # the delay below is the grace
            self.context.tell_self_later(self._grace(message.attempts), _Begin(message.id))
        else:
            delay = (recipient_backoff(message.attempts - 1) if kind is SendClass.RETRY_RECIPIENT
                     else backoff_delay(message.attempts - 1, retry.base_s, retry.max_s,
                                        self._uniform))
            self._services.store.write(
                lambda tx: outbound_store.set_state(tx, message.id, "pending"))
            self.context.tell_self_later(delay, _Begin(message.id))

    def _grace(self, attempts: int) -> float:
        """How long an unsure outcome waits for its status webhook: never
        less than ``settle_grace_s``, longer as attempts grow."""
        retry = self._services.settings.retry
        backoff = min(retry.max_s, retry.base_s * 2.0 ** max(attempts - 1, 0))
        return max(retry.settle_grace_s, backoff)

    # -- endings ----------------------------------------------------------------

    def _sent(self, message: Outbound, wamid: str) -> None:
        def record(tx: Tx) -> None:
            current = outbound_store.load(tx, message.id)
            already = current is not None and current.state == "sent"
            outbound_store.mark_sent(tx, message, wamid)
            if not already:
                tx.emit(message.tenant, "outbound.sent", {
                    "id": message.id, "wamid": wamid, "to": message.recipient,
                    "automatic": message.automatic,
                })

        self._services.store.write(record)
        self._finish(message.id)

    def _dead(self, message: Outbound, reason: str, error: dict[str, Any]) -> None:
        def record(tx: Tx) -> None:
            if outbound_store.to_dlq(tx, message, reason, error):
                tx.emit(message.tenant, "outbound.failed", {
                    "id": message.id, "to": message.recipient, "reason": reason,
                    "error": error, "wamid": message.wamid,
                })

        self._services.store.write(record)
        self._finish(message.id)

    def _number_removed(self, message: Outbound) -> None:
        """The number left the config and its retirement ran out first."""
        self._dead(message, "number_removed", {
            "status": None, "code": None,
            "message": "the phone number was removed from the config before this was sent"})

    def _finish(self, message_id: str) -> None:
        """The message is done with: the recipient's next one may go."""
        self._graced.discard(message_id)
        recipient = self._recipient_of.pop(message_id, None)
        if recipient is None:
            return
        queue = self._queues.get(recipient)
        if queue and queue[0] == message_id:
            queue.popleft()
        elif queue and message_id in queue:
            queue.remove(message_id)
        if queue:
            self._begin(queue[0])
        else:
            self._queues.pop(recipient, None)

    # -- asking the number's actors ----------------------------------------------

    def _ask(self, path: str, message: Any) -> Any:
        return self.context.registry.ask(path, message, timeout=ASK_TIMEOUT_S)

    def _tell(self, path: str, message: Any) -> None:
        """A breaker's outcome report; a breaker that retired has no use for it
        (and the answer it reports on must still be recorded)."""
        try:
            self.context.registry.tell(path, message)
        except NotRegistered:
            log.info("outcome_for_retired_breaker", path=path)
