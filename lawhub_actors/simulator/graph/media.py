"""Media: the metadata ``GET /{version}/{media_id}`` resolves, the download URLs it hands out
(lookaside.fbsbx.com's shape, served by the same app) and the bytes behind them, with the
failures, throttling and stalls a test injects and what each media saw (:class:`MediaStats`).

:class:`~lawhub_actors.simulator.graph.GraphStandIn` documents the setters.
"""

from __future__ import annotations

import hashlib
import secrets as random_source
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from lawhub_actors.simulator.graph import shutdown
from lawhub_actors.simulator.graph.errors import default_code, unknown_object, whatsapp_error

ATTACHMENTS_PATH = "/whatsapp_business/attachments/"
DEFAULT_URL_TTL_S = 300.0
DEFAULT_CHUNK_SIZE = 64 * 1024


@dataclass(frozen=True, slots=True)
class DownloadRecord:
    """One request for a media's download URL, as the server saw it."""

    status: int
    bytes_sent: int  # written to the connection before it ended (includes socket buffers)
    completed: bool  # the whole body was written


@dataclass(frozen=True, slots=True)
class MediaStats:
    resolves: int  # authorised ``GET /{version}/{media_id}`` requests, failed ones included
    downloads: tuple[DownloadRecord, ...]  # authorised requests of a URL naming this media

    @property
    def bytes_sent(self) -> tuple[int, ...]:
        return tuple(download.bytes_sent for download in self.downloads)


@dataclass(slots=True)
class _Download:
    status: int
    bytes_sent: int = 0
    completed: bool = False


@dataclass(slots=True)
class _Media:
    media_id: str
    data: bytes
    mime_type: str
    sha256: str
    file_size: int
    chunked: bool
    resolves: int = 0
    downloads: list[_Download] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _IssuedUrl:
    media_id: str
    ext: str
    expires_at: float


class MediaStore:
    """The media Meta holds and the download URLs it handed out.

    ``clock`` times URL expiry; ``url_ttl_s``, ``chunk_size`` (the largest write of a
    download) and ``resolve_delay_s`` may be changed at any time.
    """

    def __init__(self, clock: Callable[[], float], url_ttl_s: float, chunk_size: int) -> None:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.url_ttl_s = url_ttl_s
        self.chunk_size = chunk_size
        self.resolve_delay_s = 0.0
        self._clock = clock
        self._media: dict[str, _Media] = {}
        self._urls: dict[str, _IssuedUrl] = {}
        self._resolve_failures: deque[tuple[int, int]] = deque()
        self._download_failures: deque[int] = deque()
        self._rate_all: float | None = None
        self._rates: dict[str, float | None] = {}
        self._stalls: dict[str, int] = {}

    # -- state -------------------------------------------------------------------------------

    def add_media(
        self,
        data: bytes,
        mime_type: str,
        *,
        sha256: str | None,
        file_size: int | None,
        media_id: str | None,
        chunked: bool,
    ) -> str:
        if media_id is None:
            media_id = str(random_source.randbelow(9 * 10**15) + 10**15)  # 16 digits, like Meta
        if media_id in self._media:
            raise ValueError(f"media {media_id!r} already exists")
        self._media[media_id] = _Media(
            media_id=media_id,
            data=bytes(data),
            mime_type=mime_type,
            sha256=sha256 if sha256 is not None else hashlib.sha256(data).hexdigest(),
            file_size=file_size if file_size is not None else len(data),
            chunked=chunked,
        )
        return media_id

    def remove_media(self, media_id: str) -> None:
        self._media.pop(media_id, None)

    def expire_urls(self) -> None:
        self._urls.clear()

    def fail_next(self, count: int, status: int, code: int | None) -> None:
        error_code = code if code is not None else default_code(status)
        self._resolve_failures.extend([(status, error_code)] * count)

    def fail_downloads_next(self, count: int, status: int) -> None:
        self._download_failures.extend([status] * count)

    def slow_download(self, bytes_per_s: float | None, media_id: str | None) -> None:
        if bytes_per_s is not None and bytes_per_s <= 0:
            raise ValueError("bytes_per_s must be positive")
        if media_id is None:
            self._rate_all = bytes_per_s
            self._rates.clear()
        else:
            self._rates[media_id] = bytes_per_s

    def stall_download(self, media_id: str, after_bytes: int) -> None:
        self._stalls[media_id] = after_bytes

    def unstall_download(self, media_id: str) -> None:
        self._stalls.pop(media_id, None)

    def stats(self, media_id: str) -> MediaStats:
        media = self._media[media_id]
        return MediaStats(
            resolves=media.resolves,
            downloads=tuple(
                DownloadRecord(d.status, d.bytes_sent, d.completed) for d in media.downloads
            ),
        )

    # -- serving -----------------------------------------------------------------------------

    async def resolve(self, request: web.Request) -> web.StreamResponse:
        """``GET /{version}/{media_id}``: the metadata and a fresh download URL."""
        media_id = request.match_info["media_id"]
        media = self._media.get(media_id)
        if media is not None:
            media.resolves += 1
        await shutdown.pause(request.app, self.resolve_delay_s)
        if self._resolve_failures:
            status, code = self._resolve_failures.popleft()
            return whatsapp_error(status, code)
        if media is None:
            return unknown_object("get", media_id)
        expires_at = self._clock() + self.url_ttl_s
        url_hash = random_source.token_urlsafe(24)
        issued = _IssuedUrl(media_id, str(int(expires_at)), expires_at)
        self._urls[url_hash] = issued
        url = request.url.origin().with_path(ATTACHMENTS_PATH).with_query(
            {"mid": media_id, "ext": issued.ext, "hash": url_hash}
        )
        return web.json_response({
            "messaging_product": "whatsapp",
            "url": str(url),
            "mime_type": media.mime_type,
            "sha256": media.sha256,
            "file_size": media.file_size,
            "id": media_id,
        })

    async def download(self, request: web.Request) -> web.StreamResponse:
        """``GET`` of a download URL: the bytes, while the URL lives."""
        media_id = request.query.get("mid", "")
        media = self._media.get(media_id)
        record = _Download(status=404)
        if media is not None:
            media.downloads.append(record)
        if self._download_failures:
            record.status = self._download_failures.popleft()
            return web.Response(status=record.status, text="Service unavailable")
        issued = self._urls.get(request.query.get("hash", ""))
        if (
            media is None
            or issued is None
            or issued.media_id != media_id
            or issued.ext != request.query.get("ext")
            or self._clock() >= issued.expires_at
        ):
            return web.Response(status=404, text="URL signature expired")
        record.status = 200
        return await self._stream(request, media, record)

    async def _stream(
        self, request: web.Request, media: _Media, record: _Download
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": media.mime_type})
        if media.chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = len(media.data)
        rate = self._rates.get(media.media_id, self._rate_all)
        stall_at = self._stalls.get(media.media_id)
        data = memoryview(media.data)
        try:
            await response.prepare(request)
            while record.bytes_sent < len(data):
                sent = record.bytes_sent
                if stall_at is not None and sent >= stall_at:
                    await shutdown.until_shutdown(request.app)
                    return response  # shutting down: the transfer stays incomplete
                size = self.chunk_size
                if rate is not None:
                    size = max(1, min(size, int(rate / 20)))  # ~20 writes a second
                if stall_at is not None:
                    size = min(size, stall_at - sent)
                chunk = data[sent:sent + size]
                await response.write(chunk)
                record.bytes_sent = sent + len(chunk)
                if rate is not None and await shutdown.pause(request.app, len(chunk) / rate):
                    return response
            await response.write_eof()
            record.completed = True
        except ConnectionError:
            pass  # the client went away: bytes_sent says how far it got
        return response


