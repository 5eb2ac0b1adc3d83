"""Assist: intent and urgency of a client's message, from masked text only.

The shard masks the text before sending it here (the ``Classify`` message
carries a ``MaskedText``, which only masking can make), so neither the rule
classifier nor an optional HTTP one ever sees a phone number, a NIK or a
name. The result becomes ``intake.updated`` — and ``intake.urgent`` when
someone was arrested or a hearing is near — once per message, even when a
journal replay classifies it again.
"""

from __future__ import annotations

from typing import Any

from lawhub_actors.actors.messages import Classify
from lawhub_actors.actors.services import Services
from lawhub_actors.adapters.sqlite_store import Tx
from lawhub_actors.core.assist import Classifier, Urgency
from lawhub_actors.core.masking import MaskedText
from supervisors import Actor

PATH = "inbound/assist"
URGENT = frozenset({Urgency.HIGH, Urgency.CRITICAL})


class AssistWorker(Actor):
    def __init__(self, services: Services, classifier: Classifier) -> None:
        self._services = services
        self._classifier = classifier

    def receive(self, message: Any) -> Any:
        if not isinstance(message, Classify) or not isinstance(message.masked, MaskedText):
            return super().receive(message)
        result = self._classifier.classify(message.masked)
        data = {
            "customer": message.customer,
            "wamid": message.wamid,
            "id": message.message_id,
            "intent": result.intent.value,
            "urgency": result.urgency.value,
            "confidence": result.confidence,
            "reasons": list(result.reasons),
        }
        def record(tx: Tx) -> None:
            source = f"intake:{message.tenant}:{message.wamid}"
            if tx.audit(source, message.tenant, "intake", message.customer, data):
                tx.emit(message.tenant, "intake.updated", data)
                if result.urgency in URGENT:
                    tx.emit(message.tenant, "intake.urgent", data)

        events = self._services.store.write(record).events
        if events:
            self._services.publish(events)
        return None
