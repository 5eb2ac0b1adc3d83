"""The dead-letter queue of sends: what puts a send there, and what an
operator may do with it (replay, delete). Each is a function of a
:class:`Tx`, so it runs inside the caller's store transaction.

- :func:`dead_letter`: a send Meta refused for good, or whose attempts ran
  out: into the queue, audited, and ``outbound.failed`` on the feed.
- :func:`abandon`: a send its worker kept crashing on (its mailbox gave it
  up): the same, as ``processing_failed``, unless it finished meanwhile.
- :func:`replay`: every admission check again (the customer may have opted
  out, the window closed, the template paused), then ``pending`` with its
  attempts reset and ``outbound.accepted`` (``replayed``) on the feed; the
  caller hands it to its worker after the commit.
- :func:`discard`: ``discarded``, audited; it is never sent.
"""

from __future__ import annotations

import uuid
from typing import Any

from lawhub_actors.adapters import outbound_store
from lawhub_actors.adapters.outbound_store import Outbound
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.send_lifecycle import FINISHED, SendState
from lawhub_actors.settings import Settings
from lawhub_actors.usecases.sends import recheck


class NotDead(Exception):
    """No such message in the dead-letter queue."""


def dead_letter(tx: Tx, message: Outbound, reason: str, error: dict[str, Any]) -> None:
    if outbound_store.to_dlq(tx, message, reason, error):
        tx.emit(message.tenant, "outbound.failed", {
            "id": message.id, "to": message.recipient, "reason": reason,
            "error": error, "wamid": message.wamid,
        })


def abandon(tx: Tx, message_id: str, why: str) -> None:
    message = outbound_store.load(tx, message_id)
    if message is not None and message.state not in FINISHED:
        dead_letter(tx, message, "processing_failed", {"message": why})


def replay(tx: Tx, settings: Settings, message_id: str, by: str) -> tuple[str, str]:
    """Back to ``pending``: its tenant and recipient, for the caller to hand
    it to its worker. Raises :class:`NotDead`, or the admission's refusal."""
    message = _take_out(tx, message_id)
    recheck(tx, settings, message)
    outbound_store.set_state(tx, message_id, SendState.PENDING)
    outbound_store.reset_attempts(tx, message_id)
    tx.audit(f"dlq:{uuid.uuid4().hex}", message.tenant, "dlq_replay", message_id, {"by": by})
    tx.emit(message.tenant, "outbound.accepted", {
        "id": message_id, "to": message.recipient, "type": message.content["type"],
        "phone_number_id": message.phone_number_id, "automatic": message.automatic,
        "replayed": True,
    })
    return message.tenant, message.recipient


def discard(tx: Tx, message_id: str, by: str) -> None:
    """Raises :class:`NotDead`."""
    message = _take_out(tx, message_id)
    outbound_store.set_state(tx, message_id, SendState.DISCARDED)
    tx.audit(f"dlq:{uuid.uuid4().hex}", message.tenant, "dlq_delete", message_id, {"by": by})


def _take_out(tx: Tx, message_id: str) -> Outbound:
    message = outbound_store.load(tx, message_id)
    if message is None or not outbound_store.undead(tx, message_id):
        raise NotDead(message_id)
    return message
