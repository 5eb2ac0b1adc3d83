"""Session shards: where a tenant's conversations are handled, in order.

A tenant's pool hashes customers onto shards, so one conversation's
updates reach one shard in arrival order while other shards go on in
parallel. A shard gets its updates in batches and commits a batch at
once; for each update, one savepoint of that commit records every effect —
a new customer as a temporary lead, the message (sealed), the refreshed
24-hour window, a consent change and its audit entry, the feed event —
or, on a replay, finds it all there and does nothing; an update that fails
is undone alone and settled as failed. Only after the commit (which puts
its events on the feed) is the dispatcher told the batch is durable (one
``Settled``). Each savepoint first fences the update's partition
(:func:`~lawhub_actors.adapters.leases.fence`): once another node has
taken the partition over, nothing of the update is written here, and it is
settled as ``fenced`` (its new owner does it).
The built-in classifier runs here, on the masked text, and its
``intake.updated`` is written in the message's own savepoint. A message
that takes a slow step is handed on instead: its media to the media pool,
its text (masked) to the assist pool when the classifier is remote, one
after the other, and the last of them settles the update once its result
is durable (the dispatcher holds the rest of the conversation until then).
A replay of a message whose slow steps never became durable takes them
again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from lawhub_actors.actors import paths
from lawhub_actors.actors.assist import URGENT, intake_source, record_intake
from lawhub_actors.actors.entry_reader import conversation_of
from lawhub_actors.actors.inbound_messages import (
    Classify,
    Inbound,
    InboundBatch,
    Processed,
    Settled,
    takes_slow_step,
)
from lawhub_actors.actors.inbound_records import describe
from lawhub_actors.actors.media import ScanMedia
from lawhub_actors.actors.outbound_worker import Send
from lawhub_actors.actors.services import Services
from lawhub_actors.adapters import outbound_store
from lawhub_actors.adapters.leases import Fenced, fenced
from lawhub_actors.adapters.media_pipeline import MediaJob
from lawhub_actors.adapters.store_tx import Tx, state_from_status
from lawhub_actors.core import consent
from lawhub_actors.core.events import InboundMessage, PreferenceUpdate, StatusUpdate
from lawhub_actors.core.masking import MaskedText, mask
from lawhub_actors.core.send_lifecycle import SendState, may_move
from lawhub_actors.usecases import auto_replies
from lawhub_actors.usecases.consent import change_consent
from supervisors import Actor

log = structlog.get_logger("lawhub.sessions")


@dataclass(slots=True)
class _Plan:
    """One update's work: what its transaction does, and what follows the
    commit (``after`` answers whether the update is settled here)."""

    inbound: Inbound
    work: Callable[[Tx], Any]
    after: Callable[[Any], bool]


class SessionShard(Actor):
    def __init__(self, services: Services, tenant: str) -> None:
        self._services = services
        self._tenant = tenant

    def receive(self, message: Any) -> Any:
        if not isinstance(message, InboundBatch):
            return super().receive(message)
        self._batch(message.items)
        return None

    def _batch(self, items: tuple[Inbound, ...]) -> None:
        """Every update in one commit, each in its own savepoint: one that
        fails is settled as failed alone (quarantined by the dispatcher) and
        its neighbours keep their effects. A commit that fails raises: the
        batch is handed again (all of it idempotent)."""
        settled: list[Processed] = []
        plans: list[_Plan] = []
        for inbound in items:
            try:
                plans.append(self._plan(inbound))
            except Exception as error:  # noqa: BLE001 - this update's fault alone
                settled.append(self._failed(inbound, error))
        outcomes = self._services.store.write_each(
            [self._fenced(plan) for plan in plans]) if plans else []
        done: list[tuple[_Plan, Any]] = []
        for plan, outcome in zip(plans, outcomes, strict=True):
            if isinstance(outcome, Fenced):
                settled.append(Processed(plan.inbound.journal_seq,
                                         plan.inbound.event.dedupe_key, fenced=True,
                                         epoch=plan.inbound.epoch))
            elif isinstance(outcome, Exception):
                settled.append(self._failed(plan.inbound, outcome))
            else:
                done.append((plan, outcome.value))
        for plan, value in done:
            if plan.after(value):
                settled.append(Processed(plan.inbound.journal_seq, plan.inbound.event.dedupe_key))
        if settled:  # past the bound: a settlement never waits behind the work it settles
            self.context.registry.tell(paths.DISPATCHER, Settled(tuple(settled)), bounded=False)

    def _fenced(self, plan: _Plan) -> Callable[[Tx], Any]:
        return fenced(self._services.ownership, *conversation_of(plan.inbound.event), plan.work,
                      plan.inbound.epoch)

    def _failed(self, inbound: Inbound, error: Exception) -> Processed:
        event = inbound.event
        why = describe(error)
        log.error("update_failed", tenant=event.tenant, journal_seq=inbound.journal_seq,
                  error=why)
        return Processed(inbound.journal_seq, event.dedupe_key, failed=why)

    def _plan(self, inbound: Inbound) -> _Plan:
        event = inbound.event
        if isinstance(event, InboundMessage):
            return self._message(inbound, event)
        if isinstance(event, StatusUpdate):
            return _Plan(inbound, self._status(event), lambda _: True)
        return _Plan(inbound, self._preference(event), lambda _: True)

    def _message(self, inbound: Inbound, event: InboundMessage) -> _Plan:
        journal_seq = inbound.journal_seq
        masked = (
            mask(event.text, names=[event.profile_name] if event.profile_name else [])
            if event.text else None
        )
        inline = self._services.inline_classifier
        intake = inline.classify(masked) if inline is not None and masked is not None else None
        replies: list[tuple[str, str]] = []

        def record(tx: Tx) -> tuple[str, bool, bool]:
            """(our id, whether its media still needs checking, whether its
            text still needs classifying)."""
            replies.clear()  # a savepoint undone and run again starts afresh
            at = float(event.timestamp)
            known = tx.arrived(event.tenant, event.customer, at)
            if not known:
                tx.add_lead(event.tenant, event.customer, event.profile_name, inbound_at=at)
            message_id = tx.insert_message(
                event.tenant, event.customer, direction="in", wamid=event.wamid,
                type_=event.type.value, status="received", content=_content(event),
                sent_at=event.timestamp, journal_seq=journal_seq,
            )
            if message_id is None:  # a replay: everything below already happened
                stored = tx.message_id(event.tenant, event.wamid)
                assert stored is not None
                return (stored, not tx.media_recorded(event.tenant, stored),
                        not tx.audited(intake_source(event.tenant, event.wamid)))
            tx.emit(event.tenant, "message.received", {
                "id": message_id, "customer": event.customer, "wamid": event.wamid,
                "type": event.type.value, "text": event.text, "lead": not known,
            })
            if intake is not None:
                record_intake(tx, intake, tenant=event.tenant, customer=event.customer,
                              wamid=event.wamid, message_id=message_id)
            change = consent.keyword(event.text) if event.text else None
            if change is not None:
                change_consent(tx, event.tenant, event.customer, change,
                               source=f"consent:{event.wamid}", via="keyword")
            replies.extend(auto_replies.answer(
                tx, self._services.settings, event.tenant, event.phone_number_id,
                customer=event.customer, wamid=event.wamid, at=event.timestamp,
                new_lead=not known, urgent=intake is not None and intake.urgency in URGENT,
            ))
            return message_id, True, intake is None

        def after(written: tuple[str, bool, bool]) -> bool:
            for reply_id, recipient in replies:  # bounded by the inbound window: never waits
                self.context.registry.tell(paths.WORKERS, Send(reply_id, recipient), key=recipient,
                                           bounded=False)
            message_id, unchecked, unclassified = written
            # Off at info, and costs nothing then (no argument needs computing).
            log.debug("message_stored", tenant=event.tenant, msg_id=message_id, wamid=event.wamid)
            if not takes_slow_step(event, remote_classifier=self._services.remote_classifier):
                return True
            return not self._slow_steps(inbound, event, masked, message_id,
                                        unchecked=unchecked, unclassified=unclassified)

        return _Plan(inbound, record, after)

    def _slow_steps(self, inbound: Inbound, event: InboundMessage, masked: MaskedText | None,
                    message_id: str, *, unchecked: bool, unclassified: bool) -> bool:
        """Hand the message to its slow steps; whether one took it (it then
        settles the update), or all were found durable (a replay)."""
        classify = None
        if masked is not None and unclassified and self._services.inline_classifier is None:
            classify = Classify(event.tenant, event.customer, event.wamid, message_id, masked,
                                inbound.journal_seq, event.dedupe_key, event.phone_number_id,
                                event.timestamp, inbound.epoch)
        # Slow steps in flight are bounded by the dispatcher's window: never wait for room.
        registry = self.context.registry
        if event.media is not None and unchecked:
            registry.tell(paths.MEDIA, ScanMedia(
                event.customer, event.wamid, message_id, _media_job(event),
                inbound.journal_seq, event.dedupe_key, then=classify, epoch=inbound.epoch,
            ), bounded=False)
            return True
        if classify is not None:
            registry.tell(paths.ASSIST, classify, bounded=False)
            return True
        return False

    def _status(self, event: StatusUpdate) -> Callable[[Tx], None]:
        raw = _raw_status(event)

        def record(tx: Tx) -> None:
            if not tx.insert_status(event.tenant, event.wamid, raw["status"], event.timestamp, raw):
                return  # Meta sent this one before
            incoming = state_from_status(raw)
            applied = incoming and tx.apply_status(event.tenant, event.wamid, incoming)
            if not applied:
                # Before our send call learnt the wamid (a 5xx, a crash, or a status
                # faster than the answer): Meta echoes our id; settle the message.
                ours = outbound_store.outbound_of_callback(
                    tx, event.tenant, event.biz_opaque_callback_data)
                message = ours and outbound_store.load(tx, ours)
                if message and message.wamid is None and may_move(message.state, SendState.SENT):
                    merged = outbound_store.mark_sent(tx, message, event.wamid)
                    applied = (message.id, merged)
            tx.emit(event.tenant, "message.status", {
                "wamid": event.wamid,
                "status": raw["status"],
                "errors": raw["errors"],
                # Our id once the wamid is known; until then Meta's echo of it.
                "id": applied[0] if applied else event.biz_opaque_callback_data,
                "state": applied[1].status.value if applied else None,
            })
            if applied and raw["status"] == "failed":
                tx.emit(event.tenant, "outbound.failed", {
                    "id": applied[0], "wamid": event.wamid, "reason": "meta_failed",
                    "error": raw["errors"][0] if raw["errors"] else None,
                })

        return record

    def _preference(self, event: PreferenceUpdate) -> Callable[[Tx], None]:
        change = consent.user_preference(event.value)

        def record(tx: Tx) -> None:
            if change is not None:
                change_consent(tx, event.tenant, event.customer, change,
                               source=f"preference:{event.dedupe_key}",
                               via=f"user_preferences:{event.category}")

        return record


def _raw_status(event: StatusUpdate) -> dict[str, Any]:
    """The status as the audit log keeps it: errors and pricing for billing."""
    return {
        "status": event.raw_status or event.status.value,
        "timestamp": event.timestamp,
        "recipient": event.recipient,
        "errors": [
            {"code": e.code, "title": e.title, "message": e.message, "details": e.details}
            for e in event.errors
        ],
        "pricing": None if event.pricing is None else {
            "billable": event.pricing.billable, "pricing_model": event.pricing.pricing_model,
            "category": event.pricing.category, "type": event.pricing.type,
        },
        "conversation": None if event.conversation is None else {
            "id": event.conversation.id, "origin": event.conversation.origin_type,
            "expiration": event.conversation.expiration,
        },
        "biz_opaque_callback_data": event.biz_opaque_callback_data,
    }


def _media_job(event: InboundMessage) -> MediaJob:
    media = event.media
    assert media is not None
    return MediaJob(event.tenant, media.id, event.type.value, media.mime_type, media.sha256,
                    animated=media.animated)




def _content(event: InboundMessage) -> dict[str, Any]:
    media = event.media
    return {
        "text": event.text,
        "profile_name": event.profile_name,
        "media": None if media is None else {
            "id": media.id, "mime_type": media.mime_type, "sha256": media.sha256,
            "caption": media.caption, "filename": media.filename, "voice": media.voice,
            "animated": media.animated,
        },
        "details": dict(event.details),
        "context": None if event.context is None else {
            "message_id": event.context.message_id, "forwarded": event.context.forwarded,
        },
        "errors": [{"code": e.code, "title": e.title} for e in event.errors],
    }
