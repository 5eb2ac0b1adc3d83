"""Media-scan workers: every file a client sends, downloaded and checked.

A least-busy pool (``[supervision.pools] media_workers``), so one slow
download holds up no other file while a worker is idle. The conversation a
file belongs to stays parked at the dispatcher until its verdict is durable
(then, with a caption, until the caption is classified too); every other
conversation goes on.

A failure on Meta's side or clamd's is tried again after a backoff with full
jitter (``[retry]``), scheduled as a message to this worker — never a sleep
— and after the last try the file is marked ``unavailable`` so its
conversation moves on. The verdict, once recorded, is ``media.scanned`` on
the feed (with the ``ref`` for ``GET /api/v1/media/{ref}`` when clean).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import structlog

from lawhub_actors.actors import paths
from lawhub_actors.actors.inbound_messages import Classify, Processed
from lawhub_actors.actors.services import Services
from lawhub_actors.adapters.leases import Fenced, fenced
from lawhub_actors.adapters.media_pipeline import MediaJob, MediaPipeline, Retry
from lawhub_actors.adapters.store_rows import MediaRecord
from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.retry import backoff_delay
from supervisors import Actor

log = structlog.get_logger("lawhub.media")



@dataclass(frozen=True, slots=True)
class ScanMedia:
    """Fetch and check a stored message's media; then settle the update, or
    hand it on to be classified (``then``)."""

    customer: str
    wamid: str
    message_id: str
    job: MediaJob
    journal_seq: int
    dedupe_key: str
    then: Classify | None = None
    attempt: int = 0
    epoch: int | None = None
    """The partition's epoch its update was handed out under (fencing)."""

    def updates(self) -> tuple[tuple[int, str], ...]:
        """(journal seq, dedupe key) of what this settles."""
        return ((self.journal_seq, self.dedupe_key),)


class MediaWorker(Actor):
    def __init__(
        self,
        services: Services,
        pipeline: MediaPipeline,
        uniform: Callable[[], float] = random.random,
    ) -> None:
        self._services = services
        self._pipeline = pipeline
        self._uniform = uniform

    def receive(self, message: Any) -> Any:
        if not isinstance(message, ScanMedia):
            return super().receive(message)
        retry = self._services.settings.retry
        final = message.attempt + 1 >= retry.max_attempts
        outcome = self._pipeline.run(message.job, final=final)
        if isinstance(outcome, Retry):
            delay = backoff_delay(message.attempt, retry.base_s, retry.max_s, self._uniform)
            log.info("media_retry", tenant=message.job.tenant, msg_id=message.message_id,
                     reason=outcome.reason, attempt=message.attempt + 1, delay_s=round(delay, 3))
            self.context.tell_self_later(delay, replace(message, attempt=message.attempt + 1))
            return None
        self._record(message, outcome)
        return None

    def _record(self, message: ScanMedia, media: MediaRecord) -> None:
        tenant = message.job.tenant

        def record(tx: Tx) -> None:
            if tx.record_media(tenant, message.message_id, media):
                tx.emit(tenant, "media.scanned", {
                    "id": message.message_id, "customer": message.customer,
                    "wamid": message.wamid, "verdict": media.verdict, "reason": media.reason,
                    "ref": media.ref if media.verdict == "clean" else None,
                    "mime_type": media.mime_type, "size": media.size,
                    "scanner": media.scanner,
                })

        try:
            self._services.store.write(
                fenced(self._services.ownership, tenant, message.customer, record, message.epoch))
        except Fenced:  # the conversation's partition was taken over: its owner does it
            self.context.registry.tell(paths.DISPATCHER, Processed(
                message.journal_seq, message.dedupe_key, fenced=True, epoch=message.epoch),
                bounded=False)
            return
        log.info("media_checked", tenant=tenant, msg_id=message.message_id,
                 verdict=media.verdict, reason=media.reason, scanner=media.scanner)
        if message.then is not None:
            self.context.registry.tell(paths.ASSIST, message.then, bounded=False)
        else:
            settled = Processed(message.journal_seq, message.dedupe_key)
            self.context.registry.tell(paths.DISPATCHER, settled, bounded=False)
