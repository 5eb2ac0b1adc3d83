"""Assist: intent and urgency of a client's message, from masked text only.

The shard masks the text before sending it here (the ``Classify`` message
carries a ``MaskedText``, which only masking can make), so neither the rule
classifier nor an optional HTTP one ever sees a phone number, a NIK or a
name. The result becomes ``intake.updated`` — and ``intake.urgent`` when
someone was arrested or a hearing is near — once per message, even when a
journal replay classifies it again. Only once the result is durable is the
update settled (``Processed`` to the dispatcher), so a crash before that
replays the message and classifies it again.

The built-in rules are pure and fast: session shards run them inline, in
the transaction that stores the message (see ``sessions``), and this pool
only serves a remote classifier. Its calls run on a bounded pool of
threads (``[assist] max_in_flight``) and come back as ``Classified``: a
worker never waits on the network, so one slow answer holds up only the
conversation it belongs to.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import structlog

from lawhub_actors.actors import paths
from lawhub_actors.actors.inbound_messages import Classify, Processed
from lawhub_actors.actors.outbound_worker import Send
from lawhub_actors.actors.services import Services
from lawhub_actors.adapters.leases import Fenced, fenced
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.assist import Classification, Classifier, Urgency
from lawhub_actors.core.masking import MaskedText
from lawhub_actors.usecases import auto_replies
from supervisors import Actor, NotRegistered

log = structlog.get_logger("lawhub.assist")

URGENT = frozenset({Urgency.HIGH, Urgency.CRITICAL})


def intake_source(tenant: str, wamid: str) -> str:
    """The audit key of a message's classification (one per message)."""
    return f"intake:{tenant}:{wamid}"


@dataclass(frozen=True, slots=True)
class Classified:
    """An offloaded classification came back: its result, or what it raised."""

    request: Classify
    outcome: Future[Classification]

    def updates(self) -> tuple[tuple[int, str], ...]:
        return self.request.updates()


class AssistWorker(Actor):
    def __init__(
        self, services: Services, classifier: Classifier, offload: Executor | None = None
    ) -> None:
        self._services = services
        self._classifier = classifier
        self._offload = offload

    def receive(self, message: Any) -> Any:
        if isinstance(message, Classify) and isinstance(message.masked, MaskedText):
            if self._offload is None:
                self._record(message, self._classifier.classify(message.masked))
            else:
                self._submit(message, message.masked)
        elif isinstance(message, Classified):
            # A classifier that raised crashes this handler: retried, then dead-lettered.
            self._record(message.request, message.outcome.result())
        else:
            return super().receive(message)
        return None

    def _submit(self, request: Classify, masked: MaskedText) -> None:
        registry = self.context.registry

        def back(outcome: Future[Classification]) -> None:
            try:
                # its answer, past the bound
                registry.tell(paths.ASSIST, Classified(request, outcome), bounded=False)
            except NotRegistered:  # shutting down: unsettled, so the next start replays it
                log.info("classification_dropped_at_shutdown", wamid=request.wamid)

        assert self._offload is not None
        self._offload.submit(self._classifier.classify, masked).add_done_callback(back)

    def _record(self, message: Classify, result: Classification) -> None:
        def record(tx: Tx) -> list[tuple[str, str]]:
            record_intake(tx, result, tenant=message.tenant, customer=message.customer,
                          wamid=message.wamid, message_id=message.message_id)
            if result.urgency not in URGENT or not message.phone_number_id:
                return []
            return auto_replies.answer(
                tx, self._services.settings, message.tenant, message.phone_number_id,
                customer=message.customer, wamid=message.wamid, at=message.at,
                new_lead=False, urgent=True,
            )

        try:
            written = self._services.store.write(
                fenced(self._services.ownership, message.tenant, message.customer, record,
                       message.epoch))
        except Fenced:  # the conversation's partition was taken over: its owner does it
            self.context.registry.tell(paths.DISPATCHER, Processed(
                message.journal_seq, message.dedupe_key, fenced=True, epoch=message.epoch),
                bounded=False)
            return
        for reply_id, recipient in written.value:
            self.context.registry.tell(paths.WORKERS, Send(reply_id, recipient), key=recipient,
                                       bounded=False)  # bounded by the inbound window
        settled = Processed(message.journal_seq, message.dedupe_key)
        self.context.registry.tell(paths.DISPATCHER, settled, bounded=False)


def record_intake(tx: Tx, result: Classification, *, tenant: str, customer: str, wamid: str,
                  message_id: str) -> None:
    """``intake.updated`` (and ``intake.urgent``) once per message."""
    data = {
        "customer": customer,
        "wamid": wamid,
        "id": message_id,
        "intent": result.intent.value,
        "urgency": result.urgency.value,
        "confidence": result.confidence,
        "reasons": list(result.reasons),
    }
    if tx.audit(intake_source(tenant, wamid), tenant, "intake", tx.ref(tenant, customer),
                data):
        tx.emit(tenant, "intake.updated", data)
        if result.urgency in URGENT:
            tx.emit(tenant, "intake.urgent", data)
