"""One inbound media file, from Meta to a verdict and a sealed file.

The steps, each refusing as early as it can:

1. download from the Graph API (``GraphMedia``): capped at the kind's limit
   (and ``[limits] media_max_bytes``) before and while reading;
2. while the bytes stream in, they are sealed into a partial file, hashed
   (SHA-256), sniffed (the first bytes) and searched for the EICAR test
   string — one pass, never the whole file in memory;
3. integrity: the SHA-256 must be the one Meta announced;
4. type: the sniffed type must be allowed for the message type and agree
   with the declared one; executables are refused whatever their name;
5. clamd, when configured: the sealed file is decrypted into an INSTREAM
   scan.

Outcomes: a :class:`MediaRecord` — ``clean`` (kept on the clean shelf),
``infected`` / ``refused`` (kept in quarantine when there are bytes to
keep), ``unavailable`` (Meta or the scanner kept failing) — or
:class:`Retry` when Meta or clamd failed in a way worth another try and
this was not the last one. Nothing here sleeps or retries by itself: the
media actor schedules the next try, so a worker never blocks on a backoff.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypedDict

from lawhub_actors.adapters.clamd import Clamd, ClamdUnavailable
from lawhub_actors.adapters.graph_media import (
    GraphMedia,
    MediaRefused,
    MediaTooLarge,
    MediaUnavailable,
)
from lawhub_actors.adapters.media_files import MediaFiles, Partial, Shelf
from lawhub_actors.adapters.store_rows import MediaRecord
from lawhub_actors.core.media import (
    SNIFF_BYTES,
    EicarScanner,
    check_type,
    media_kind,
    sha256_matches,
    size_limit,
)

EICAR_SIGNATURE = "Eicar-Test-Signature"


@dataclass(frozen=True, slots=True)
class MediaJob:
    tenant: str
    media_id: str
    message_type: str
    declared_mime: str | None
    sha256: str | None
    """As the webhook announced it (hex or base64); None: ask the Graph API."""
    animated: bool = False


@dataclass(frozen=True, slots=True)
class Retry:
    """Worth another try later: ``meta_unavailable`` or ``scanner_unavailable``."""

    reason: str


class _Found(TypedDict):
    """What the download turned out to be, recorded whatever the verdict."""

    size: int
    mime_type: str | None


class _Inspected:
    """Passes the download through, hashing, sniffing and EICAR-searching it."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.size = 0
        self.head = b""
        self.digest = hashlib.sha256()
        self.eicar = EicarScanner()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size += len(chunk)
            self.digest.update(chunk)
            self.eicar.feed(chunk)
            if len(self.head) < SNIFF_BYTES:
                self.head += chunk[: SNIFF_BYTES - len(self.head)]
            yield chunk


class MediaPipeline:
    def __init__(
        self, graph: GraphMedia | None, files: MediaFiles, scanner: Clamd | None, cap: int
    ) -> None:
        self._graph = graph
        self._files = files
        self._scanner = scanner
        self._cap = cap
        self.scanner_name = "clamd" if scanner is not None else "builtin"

    def run(self, job: MediaJob, *, final: bool) -> MediaRecord | Retry:
        kind = media_kind(job.message_type)
        if kind is None:
            return self._record("refused", "not_media")
        if self._graph is None:
            return self._record("unavailable", "graph_not_configured")
        limit = size_limit(kind, animated=job.animated, cap=self._cap)
        with self._files.partial(job.tenant) as partial:
            try:
                expected = job.sha256 or self._graph.resolve(job.media_id).sha256
                inspected = _Inspected(self._graph.download(job.media_id, limit))
                partial.fill(inspected)
            except MediaTooLarge as error:  # reading stopped at the cap: nothing kept
                return self._record("refused", "too_large", size=error.bytes_read)
            except MediaRefused:
                return self._record("unavailable", "media_refused")
            except MediaUnavailable:
                return self._record("unavailable", "meta_unavailable") if final else Retry(
                    "meta_unavailable"
                )
            sniffed = check_type(kind, job.declared_mime or "", inspected.head)
            found: _Found = {
                "size": inspected.size,
                "mime_type": sniffed.sniffed,
            }
            if not sha256_matches(expected, inspected.digest.digest()):
                return self._keep(partial, "refused", "checksum_mismatch", **found)
            if not sniffed.ok:
                return self._keep(partial, "refused", sniffed.reason, **found)
            if inspected.eicar.found:
                return self._keep(partial, "infected", EICAR_SIGNATURE, **found)
            if self._scanner is None:
                return self._keep(partial, "clean", None, **found)
            try:
                result = self._scanner.scan(partial.plaintext())
            except ClamdUnavailable:
                if not final:
                    return Retry("scanner_unavailable")
                return self._keep(partial, "unavailable", "scanner_unavailable", **found)
            if result.clean:
                return self._keep(partial, "clean", None, **found)
            return self._keep(partial, "infected", result.signature, **found)

    def _keep(self, partial: Partial, verdict: str, reason: str | None, *, size: int,
              mime_type: str | None) -> MediaRecord:
        shelf: Shelf = "clean" if verdict == "clean" else "quarantine"
        ref = partial.keep(shelf)
        return MediaRecord(verdict, reason, shelf, ref, mime_type, size, self.scanner_name)

    def _record(self, verdict: str, reason: str, size: int | None = None) -> MediaRecord:
        return MediaRecord(verdict, reason, None, None, None, size, self.scanner_name)
