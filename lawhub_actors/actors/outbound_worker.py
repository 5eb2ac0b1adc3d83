"""The outbound workers: a hash pool by recipient at :data:`paths.WORKERS`,
so one client's messages leave in the order they were accepted.

A worker takes one message per recipient at a time (the others of that
recipient wait, in order, in the worker); other recipients go on. For each
message: the number's breaker (open: try again when it half-opens), a
permit from its limiter for the recipient's pair-rate slot (a wait: a
message to itself after it, never a sleep), then the Graph call, a
coroutine on the call loop (:mod:`~lawhub_actors.adapters.call_loop`:
``send_in_flight`` under way at once on one thread), which takes the
number's throughput slot right before it leaves, so a slow answer blocks
no other recipient and a busy worker never makes sends bunch up above
the rate.

A message is sent by the node that holds its recipient's conversation
partition: the claim that makes it ``sending`` is fenced by the partition
(:mod:`leases`), and right before the call to Meta the worker checks the
node still holds it at that epoch (a node that lost the partition
meanwhile leaves the message to its new owner, which treats a ``sending``
message as an unsure outcome: a grace for Meta's status, then a retry).

What follows a failed call is decided by
:func:`lawhub_actors.core.send_lifecycle.after_failure` (send again after a
backoff, wait for a status webhook first when Meta may have sent it, or the
dead-letter queue); a sent message's wamid is stored before anything else.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import structlog

from lawhub_actors import bridge
from lawhub_actors.actors import paths
from lawhub_actors.actors.number_breaker import MayCall, Outcome
from lawhub_actors.actors.number_limiter import PairPermit, ThroughputPermit, late_after
from lawhub_actors.actors.services import Services
from lawhub_actors.adapters import outbound_store
from lawhub_actors.adapters.call_loop import CallLoop
from lawhub_actors.adapters.graph_send import GraphSend, SendFailed, Sent
from lawhub_actors.adapters.leases import Fenced, Ownership, fence
from lawhub_actors.adapters.outbound_store import Outbound
from lawhub_actors.adapters.store import Store
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.send_lifecycle import (
    FINISHED,
    UNSURE,
    DeadLetter,
    Failure,
    RetryPolicy,
    SendState,
    after_failure,
    grace_s,
    may_move,
)
from lawhub_actors.settings import Retry
from lawhub_actors.usecases import dead_letters
from supervisors import Actor, MailboxFull, NotRegistered, Registry

log = structlog.get_logger("lawhub.outbound")

ASK_TIMEOUT_S = 5.0
CATCH_UP_CHECK_S = 0.1
CATCH_UP_MAX_S = 1.0
"""An unsure send past its grace looks whether the inbound processing has
caught up (see ``_graceful``) after CATCH_UP_CHECK_S, then twice as long
each time, up to CATCH_UP_MAX_S."""
SLOT_RETRY_S = 1.0
"""After a limiter gave no slot: try the message again this much later."""
LATE_RESERVATIONS = 4
"""Slots a call may take in turn when it keeps waking late (then it goes)."""


def retry_policy(retry: Retry) -> RetryPolicy:
    return RetryPolicy(max_attempts=retry.max_attempts, base_s=retry.base_s,
                       max_s=retry.max_s, settle_grace_s=retry.settle_grace_s)


@dataclass(frozen=True, slots=True)
class Send:
    """Take up an outbound message (accepted, recovered at start, or replayed)."""

    id: str
    recipient: str


@dataclass(frozen=True, slots=True)
class _Begin:
    id: str


@dataclass(frozen=True, slots=True)
class _CatchUp:
    """Self-sent while an unsure send waits for the inbound processing to
    catch up with the journal (see ``_graceful``): look again."""

    id: str


@dataclass(slots=True)
class _Grace:
    """An unsure outcome's wait before it may be sent again."""

    upto: int | None = None
    """None while the grace runs; then the journal's end as it was when the
    grace ended, which the inbound processing must have settled."""
    partition: int = 0
    """The recipient's partition (its processing is the one waited for)."""
    every_s: float = CATCH_UP_CHECK_S


@dataclass(frozen=True, slots=True)
class _PairSlot:
    """The recipient's pair-rate slot has come: the throughput permit next."""

    id: str


@dataclass(frozen=True, slots=True)
class _Done:
    id: str
    outcome: Future[Sent | SendFailed]
    attempt: int
    """The claim's attempt number: an answer to another claim decides nothing."""


OutboundStep = Send | _Begin | _CatchUp | _PairSlot | _Done
"""Worker messages about one outbound message (``.id``): a dead letter of
any of them dead-letters that message."""


@dataclass
class Sweep:
    """What a node's periodic sweep for unfinished sends keeps from one
    sweep to the next, so that a backlog of thousands costs it little."""

    opened: dict[str, str] = field(default_factory=dict)
    """The recipients' numbers opened so far, by message id (each opened once)."""
    told: set[str] = field(default_factory=set)
    """The messages handed over to their workers: a worker has them (a
    worker that restarts, and a partition taken again, take everything up
    anew), so they are not handed over again."""


def take_up_unfinished(store: Store, registry: Registry, ownership: Ownership,
                       sweep: Sweep | None = None) -> int:
    """Hand every message not yet sent nor dead whose recipient's partition
    this node holds to its worker, in accepted order; how many. Never
    blocks: a full queue leaves a message pending in the store, logged
    (a sweep hands it over next time). Repeats are harmless (a worker
    ignores a message it has in hand). ``sweep``: a sweep's own state, left
    holding only what is still unfinished."""
    unfinished = store.read_tx(outbound_store.unfinished, None if sweep is None else sweep.opened)
    if sweep is not None:
        sweep.opened = {message_id: recipient for message_id, _, recipient in unfinished}
        sweep.told.intersection_update(sweep.opened)
    held = ownership.held().epochs
    mine = [(message_id, recipient) for message_id, tenant, recipient in unfinished
            if ownership.of(tenant, recipient) in held
            and (sweep is None or message_id not in sweep.told)]
    for message_id, recipient in mine:
        try:
            registry.tell(paths.WORKERS, Send(message_id, recipient), key=recipient, wait=False)
        except MailboxFull:
            log.warning("outbound_queue_full", msg_id=message_id)
        else:
            if sweep is not None:
                sweep.told.add(message_id)
    return len(mine)


class NotOurs(Exception):
    """The recipient's partition left this node before the call to Meta."""


class SlotNotGiven(Exception):
    """The number's limiter gave no throughput slot within ASK_TIMEOUT_S
    (its mailbox full, or no answer): the call never left."""


class OutboundWorker(Actor):
    def __init__(self, services: Services, graph: GraphSend | None, calls: CallLoop,
                 uniform: Callable[[], float] = random.random) -> None:
        self._services = services
        self._graph = graph
        self._calls = calls
        self._uniform = uniform
        self._queues: dict[str, deque[str]] = {}
        """Per recipient: the message in progress first, then those waiting."""
        self._recipient_of: dict[str, str] = {}
        self._graced: dict[str, _Grace] = {}
        """Unknown outcomes waiting before they may be sent again."""
        self._in_call: dict[str, Outbound] = {}
        """Messages whose call is under way, as claimed: their answer needs
        only their progress read again, not the whole message opened."""
        self._begun: dict[str, Outbound] = {}
        """Messages waiting for their pair slot, as begun: their claim reads
        only their progress again, not the whole message opened."""

    def on_start(self) -> None:
        """After a restart (its queues lost with the old incarnation), take
        up every unfinished message again, each to its recipient's worker in
        accepted order; repeats are ignored. At the process's start the
        runtime does this once the whole tree runs."""
        if self.context.registry.get(self.context.path).restarts.total > 0:
            take_up_unfinished(self._services.store, self.context.registry,
                               self._services.ownership)

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
        elif isinstance(message, _CatchUp):
            self._look_again(message.id)
        elif isinstance(message, _PairSlot):
            if not self._waits_its_turn(message.id):
                self._fire(message.id)
        elif isinstance(message, _Done):
            self._done(message.id, message.outcome, message.attempt)
        else:
            return super().receive(message)
        return None

    # -- the steps ---------------------------------------------------------------

    def _load(self, message_id: str) -> Outbound | None:
        return self._services.store.read_tx(lambda tx: outbound_store.load(tx, message_id))

    def _waits_its_turn(self, message_id: str) -> bool:
        """Whether the message is in its recipient's queue behind another one:
        a timer of its own (a retry, a grace, a pair slot) that comes due
        then does nothing; its turn comes when the ones ahead are done."""
        recipient = self._recipient_of.get(message_id)
        queue = None if recipient is None else self._queues.get(recipient)
        return queue is not None and len(queue) > 0 and queue[0] != message_id

    def _begin(self, message_id: str) -> None:
        if self._waits_its_turn(message_id):
            return
        message = self._load(message_id)
        if message is None or message.state in FINISHED:
            self._finish(message_id)
            return
        if self._earlier_first(message):
            return
        # Meta may have sent it (a 5xx, or a crash mid-call): if a status with our id
        # settled it meanwhile, it is 'sent' now; otherwise the webhook gets a grace
        # period before a second send.
        unsure = message.state in UNSURE and message.attempts > 0
        if unsure and not self._graceful(message):
            return
        try:
            allowed, retry_after = self._ask(paths.breaker_of(message.phone_number_id),
                                             MayCall())
        except NotRegistered:
            self._number_removed(message)
            return
        if not allowed:
            self.context.tell_self_later(max(retry_after, 0.05), _Begin(message_id))
            return
        wait = self._ask(paths.limiter_of(message.phone_number_id),
                         PairPermit(message.recipient_ref))
        self._begun[message_id] = message
        if wait > 0:
            self.context.tell_self_later(wait, _PairSlot(message_id))
        else:
            self._fire(message_id)

    def _earlier_first(self, message: Outbound) -> bool:
        """Whether the recipient has messages accepted before this one still
        unfinished: then they are put first, in the conversation's order,
        the earliest begun, and this one waits its turn. Those already in
        the queue are behind this one (it is the queue's head): an earlier
        message heard of later than this one (told by the node that
        accepted it, or by a sweep) was queued behind it."""
        queue = self._queues.get(message.recipient)
        if queue is None:
            return False
        earlier = self._services.store.read_tx(outbound_store.earlier_unfinished, message.id)
        if not earlier:
            return False
        for message_id in earlier:
            if message_id in queue:
                queue.remove(message_id)
        for message_id in reversed(earlier):
            queue.appendleft(message_id)
            self._recipient_of[message_id] = message.recipient
        self._begin(earlier[0])
        return True

    def _graceful(self, message: Outbound) -> bool:
        """Whether an unsure outcome may be sent again: its grace is over and
        every webhook journaled by then has been processed here, so a status
        Meta sent for the earlier call would have settled it (statuses are
        journaled before Meta hears 200, but a backlog, or a partition just
        taken over from a dead node, can process them long after the grace).
        The first time, start the grace: look again after a backoff delay;
        once it is over, a chain of ``_CatchUp`` looks until the processing
        has caught up (without reading the store)."""
        grace = self._graced.get(message.id)
        if grace is None:
            self._graced[message.id] = _Grace()
            grace_delay = grace_s(message.attempts, retry_policy(self._services.settings.retry))
            self.context.tell_self_later(grace_delay, _Begin(message.id))
            return False
        if grace.upto is None:  # the grace is over: what came in until now must be processed
            grace.upto = self._services.journal.last_committed
            grace.partition = self._services.ownership.of(message.tenant, message.recipient)
            if not self._caught_up(grace):
                log.info("send_waits_for_inbound", msg_id=message.id, journal_seq=grace.upto,
                         settled=self._services.flow.settled_upto)
                self.context.tell_self_later(grace.every_s, _CatchUp(message.id))
                return False
        elif not self._caught_up(grace):
            return False  # its chain of _CatchUp looks again
        del self._graced[message.id]
        return True

    def _look_again(self, message_id: str) -> None:
        grace = self._graced.get(message_id)
        if grace is None or grace.upto is None:
            return  # finished with, or graced anew, meanwhile
        if self._caught_up(grace):
            self._begin(message_id)
            return
        grace.every_s = min(grace.every_s * 2, CATCH_UP_MAX_S)
        self.context.tell_self_later(grace.every_s, _CatchUp(message_id))

    def _caught_up(self, grace: _Grace) -> bool:
        """Whether this node has processed every journal entry up to
        ``grace.upto`` for the partition, at the epoch it holds it now (a
        partition it does not hold: its claim is fenced, nothing to wait for)."""
        assert grace.upto is not None
        ownership, flow = self._services.ownership, self._services.flow
        epoch = ownership.epoch_of(grace.partition)
        if epoch is None:
            return True
        covered = flow.settled_for.get(grace.partition) == epoch  # read before settled_upto
        return covered and flow.settled_upto >= grace.upto

    def _fire(self, message_id: str) -> None:
        """Claim the message and hand its call to the call loop: the call
        takes the number's throughput slot itself, just before it leaves."""
        ownership = self._services.ownership
        begun = self._begun.pop(message_id, None)

        def sending(tx: Tx) -> tuple[Outbound, int, int] | None:
            message = (outbound_store.load(tx, message_id) if begun is None
                       else outbound_store.progressed(tx, begun))
            if message is None or message.state in FINISHED:
                return None
            partition = ownership.of(message.tenant, message.recipient)
            epoch = fence(tx, ownership, partition)
            outbound_store.set_state(tx, message_id, SendState.SENDING, attempt=True,
                                     current=message.state)
            return message, partition, epoch

        try:
            claimed = self._services.store.write(sending).value
        except Fenced:  # the recipient's partition is another node's: its owner sends
            log.info("send_fenced", msg_id=message_id)
            self._finish(message_id)
            return
        if claimed is None:
            self._finish(message_id)
            return
        message, partition, epoch = claimed  # the epoch the claim was fenced by
        attempt = message.attempts + 1  # as loaded before the claim counted it
        if self._graph is None:
            self._dead(message, "terminal", {"status": None, "code": None,
                                             "message": "LAWHUB_ACCESS_TOKEN is not set"})
            return
        self._in_call[message_id] = message
        registry, path = self.context.registry, self.context.path
        try:
            call = self._calls.submit(self._call(message, registry, partition, epoch))
        except RuntimeError:  # stopping: 'sending' is taken up again at the next start
            log.info("send_call_dropped_at_shutdown", msg_id=message_id)
            self._finish(message_id)
            return

        def back(outcome: Future[Sent | SendFailed]) -> None:
            try:  # past the bound: an answer never waits behind the work it answers
                registry.tell(path, _Done(message_id, outcome, attempt), bounded=False)
            except NotRegistered:  # stopping: 'sending' is taken up again at the next start
                log.info("send_answer_dropped_at_shutdown", msg_id=message_id)

        call.add_done_callback(back)

    async def _call(self, message: Outbound, registry: Registry, partition: int,
                    epoch: int) -> Sent | SendFailed:
        """On the call loop: wait for a throughput slot, then call Meta. A
        call that wakes later than ``late_after`` allows takes a new slot
        (behind those reserved meanwhile) instead of bunching up with the
        next send above the number's rate. Raises :class:`NotOurs` when the
        partition left this node while it waited."""
        assert self._graph is not None
        allowed = late_after(self._services.settings.limits.throughput_headroom)
        for _ in range(LATE_RESERVATIONS):
            asked = time.monotonic()  # the slot is counted from before the ask: never later
            wait = await _permit(registry, paths.limiter_of(message.phone_number_id))
            slot = asked + wait
            if wait > 0:
                await asyncio.sleep(wait)
            if time.monotonic() - slot <= allowed:
                break
        if self._services.ownership.epoch_of(partition) != epoch:
            raise NotOurs(message.id)
        content = message.content
        if content["type"] == "text":
            return await self._graph.text(message.phone_number_id, message.recipient,
                                          content["text"], callback=message.id)
        template = content["template"]
        return await self._graph.template(
            message.phone_number_id, message.recipient, template["name"],
            template["language"], template["params"], callback=message.id)

    def _done(self, message_id: str, outcome: Future[Sent | SendFailed], attempt: int) -> None:
        if outcome.cancelled():  # the call loop closed first: 'sending' is taken up at the start
            log.info("send_call_cancelled", msg_id=message_id)
            self._finish(message_id)
            return
        claimed = self._in_call.pop(message_id, None)
        if claimed is not None and outcome.exception() is None:
            result = outcome.result()
            if isinstance(result, Sent):  # the usual answer: decided in the write recording it
                self._sent(claimed, result.wamid, attempt)
                return
        message = self._load(message_id) if claimed is None else self._services.store.read_tx(
            lambda tx: outbound_store.progressed(tx, claimed))
        if message is None:
            self._finish(message_id)
            return
        try:
            result = outcome.result()
        except (NotRegistered, NotOurs, SlotNotGiven) as never_left:
            self._never_left(message, never_left)
            return
        if message.state is not SendState.SENDING or message.attempts != attempt:
            # Settled meanwhile (Meta's status came before its answer), or the
            # answer to a call an earlier claim made (another node's since, or
            # an earlier incarnation's): nothing to decide. A recipient's
            # queue never waits on it: what is unfinished is taken up again.
            log.info("send_answer_stale", msg_id=message_id, state=message.state.value)
            if isinstance(result, Sent) and message.state not in (SendState.DISCARDED,
                                                                  SendState.SENT):
                self._sent(message, result.wamid)  # Meta's word: the record keeps it
            else:
                self._finish(message_id)
            return
        if isinstance(result, Sent):
            self._sent(message, result.wamid, attempt)
            return
        settings = self._services.settings
        decision = after_failure(
            Failure(result.status, result.code, timed_out=result.title == "timeout"),
            attempts=message.attempts, previous_code=message.last_code,
            policy=retry_policy(settings.retry), uniform=self._uniform)
        error = {"status": result.status, "code": result.code, "title": result.title,
                 "message": result.message, "details": result.details}
        log.info("send_failed", tenant=message.tenant, msg_id=message.id, status=result.status,
                 code=result.code, kind=decision.kind.value, attempt=message.attempts)
        self._tell(paths.breaker_of(message.phone_number_id),
                   Outcome(ok=decision.number_works, trip=decision.trip))
        then = decision.then
        if isinstance(then, DeadLetter):
            self._dead(message, then.reason, error)
            return
        def record(tx: Tx) -> None:
            # still in this call? a status may have settled it meanwhile, or
            # another node claimed it again since
            current = outbound_store.progressed(tx, message)
            if current is not None and current.state is SendState.SENDING and (
                    current.attempts == attempt):
                outbound_store.failed(tx, message.id, then.state, result.code)

        self._services.store.write(record)
        if then.state is SendState.UNKNOWN:
            self._graced[message.id] = _Grace()  # the delay is the grace for a status webhook
        self.context.tell_self_later(then.delay_s, _Begin(message.id))

    def _never_left(self, message: Outbound, error: Exception) -> None:
        """The call failed before it reached Meta."""
        if isinstance(error, NotRegistered):  # its limiter went while the call waited for a slot
            self._number_removed(message)
        elif isinstance(error, NotOurs):  # 'sending' tells the new owner to grace, then send
            log.info("send_left_to_new_owner", msg_id=message.id)
            self._finish(message.id)
        else:  # no slot: 'sending' makes the next try grace first (safe, if slower)
            log.warning("send_slot_not_given", msg_id=message.id)
            self.context.tell_self_later(SLOT_RETRY_S, _Begin(message.id))

    # -- endings ----------------------------------------------------------------

    def _sent(self, message: Outbound, wamid: str, attempt: int | None = None) -> None:
        """Record Meta's acceptance (its word: the record keeps it, unless an
        operator discarded the message meanwhile). ``attempt``: the claim
        whose call this answers — whether the message is still in that claim
        is read in the same write, and if so its breaker hears of the
        success (before the recipient's next message asks it); None: an
        answer already found stale. A message sent since (a status carried
        its wamid) or discarded meanwhile is left as it is."""
        def record(tx: Tx) -> tuple[bool, SendState | None]:
            now = outbound_store.progressed(tx, message)
            if now is None:
                return False, None
            current = now.state is SendState.SENDING and now.attempts == attempt
            if now.state is SendState.SENT or not may_move(now.state, SendState.SENT):
                return current, now.state
            outbound_store.mark_sent(tx, message, wamid, now.state)
            tx.emit(message.tenant, "outbound.sent", {
                "id": message.id, "wamid": wamid, "to": message.recipient,
                "automatic": message.automatic,
            })
            return current, now.state

        current, state = self._services.store.write(record).value
        if current:
            self._tell(paths.breaker_of(message.phone_number_id), Outcome(ok=True))
        elif attempt is not None and state is not None:  # settled meanwhile, or another claim's
            log.info("send_answer_stale", msg_id=message.id, state=state.value)
        self._finish(message.id)

    def _dead(self, message: Outbound, reason: str, error: dict[str, Any]) -> None:
        def record(tx: Tx) -> None:
            current = outbound_store.state_of(tx, message.id)
            if current is not None and current not in FINISHED:  # a status may have won
                dead_letters.dead_letter(tx, message, reason, error)

        self._services.store.write(record)
        self._finish(message.id)

    def _number_removed(self, message: Outbound) -> None:
        """The number left the config and its retirement ran out first."""
        self._dead(message, "number_removed", {
            "status": None, "code": None,
            "message": "the phone number was removed from the config before this was sent"})

    def _finish(self, message_id: str) -> None:
        """The message is done with: the recipient's next one may go."""
        self._graced.pop(message_id, None)
        self._in_call.pop(message_id, None)
        self._begun.pop(message_id, None)
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


async def _permit(registry: Registry, limiter: str) -> float:
    """The seconds until the number's next throughput slot, reserved, or
    :class:`SlotNotGiven` after ASK_TIMEOUT_S. The call loop never blocks:
    a full limiter mailbox (it holds at most the calls in flight and the
    workers' asks) is asked again shortly."""
    deadline = time.monotonic() + ASK_TIMEOUT_S
    while True:
        try:
            wait: float = await bridge.ask(registry, limiter, ThroughputPermit(),
                                           timeout=max(0.0, deadline - time.monotonic()))
            return wait
        except MailboxFull:
            if time.monotonic() >= deadline:
                raise SlotNotGiven(limiter) from None
            await asyncio.sleep(0.01)
        except TimeoutError:
            raise SlotNotGiven(limiter) from None
