"""A local stand-in for Meta's Graph API (media, for now), served by aiohttp.

Behaves like Meta where the gateway can tell the difference::

    GET /{version}/{media_id}                        Authorization: Bearer <token>
    200  {"messaging_product": "whatsapp", "url": "<absolute URL on this server>",
          "mime_type": "...", "sha256": "<lowercase hex>", "file_size": <int>,
          "id": "<media_id>"}
    400  unknown id: code 100, error_subcode 33, GraphMethodException
    401  missing or wrong token: code 190, OAuthException

    GET /whatsapp_business/attachments/?mid=<media_id>&ext=<expiry epoch>&hash=<token>
         (lookaside.fbsbx.com's shape, served by the same app; bearer token required)
    200  the bytes, ``Content-Type`` = the media's mime type, ``Content-Length``
    404  the URL expired (``url_ttl_s`` after it was handed out) or was never issued

Every error body is Meta's: ``{"error": {"message", "type", "code",
["error_subcode"], ["error_data"], "fbtrace_id"}}`` (see :func:`graph_error`).

State and failure modes are set on :class:`GraphStandIn` — ``add_media``,
``expire_urls``, ``fail_next``, ``fail_downloads_next``, ``slow_download``,
``stall_download``, ``resolve_delay_s`` — and what the clients did is read
back with :meth:`GraphStandIn.stats` (resolves, and per download its status
and the bytes the server actually wrote before the client went away).

Run it with :func:`serve` (async, on the caller's loop) or
:func:`serve_in_thread` (its own loop in a daemon thread, for synchronous
code such as actors). Both yield the base URL, ``http://127.0.0.1:<port>/v21.0``,
which is what ``LAWHUB_GRAPH_BASE_URL`` takes. Later additions (e.g.
``POST /{version}/{phone_number_id}/messages``) go into :meth:`GraphStandIn._routes`.

The setters are plain assignments and ``deque`` operations, so calling them
from another thread than the serving loop's is safe under the GIL; counters
are written only by the serving loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets as random_source
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "ATTACHMENTS_PATH",
    "GRAPH_VERSION",
    "DownloadRecord",
    "GraphStandIn",
    "MediaStats",
    "graph_error",
    "serve",
    "serve_in_thread",
]

GRAPH_VERSION = "v21.0"
ATTACHMENTS_PATH = "/whatsapp_business/attachments/"
DEFAULT_URL_TTL_S = 300.0
DEFAULT_CHUNK_SIZE = 64 * 1024
_SHUTDOWN_TIMEOUT_S = 5.0

_INVALID_OAUTH_MESSAGE = "Invalid OAuth access token - Cannot parse access token"
_UNSUPPORTED_GET = (
    "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to "
    "missing permissions, or does not support this operation. Please read the Graph API "
    "documentation at https://developers.facebook.com/docs/graph-api"
)
# Meta's WhatsApp error titles and ``error_data.details`` for the codes a test may inject.
_WHATSAPP_ERRORS: dict[int, tuple[str, str]] = {
    1: ("An unknown error occurred", "An unknown error occurred"),
    2: ("Service temporarily unavailable", "Service temporarily unavailable"),
    4: ("Application request limit reached", "Too many API calls"),
    80007: ("Rate limit issues", "The WhatsApp Business Account has reached its rate limit"),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131000: ("Something went wrong", "Something went wrong"),
    131016: ("Service unavailable", "A service is temporarily unavailable"),
    131052: ("Media download error", "Unable to download the media sent by the user"),
    133004: ("Server temporarily unavailable", "The server is temporarily unavailable"),
}
_WWW_AUTHENTICATE = 'OAuth "Facebook Platform" "invalid_token" "Cannot parse access token"'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_RELEASE = web.AppKey("release", asyncio.Event)


def fbtrace_id() -> str:
    """An id shaped like Meta's ``fbtrace_id`` (opaque, url-safe)."""
    return "A" + random_source.token_urlsafe(16)


def graph_error(
    status: int,
    code: int,
    message: str,
    *,
    error_type: str = "OAuthException",
    subcode: int | None = None,
    details: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A Graph API error response: ``{"error": {message, type, code, …, fbtrace_id}}``."""
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = fbtrace_id()
    return web.json_response({"error": error}, status=status, headers=headers)


def whatsapp_error(status: int, code: int) -> web.Response:
    """Meta's body for a WhatsApp error code: ``(#code) Title`` plus ``error_data.details``."""
    title, details = _WHATSAPP_ERRORS.get(code, ("Something went wrong", "Something went wrong"))
    return graph_error(status, code, f"(#{code}) {title}", details=details)


def _default_code(status: int) -> int:
    return 130429 if status == 429 else 131000


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


class GraphStandIn:
    """Meta's Graph API media endpoints and lookaside downloads, with injectable failures."""

    def __init__(
        self,
        access_token: str,
        *,
        url_ttl_s: float = DEFAULT_URL_TTL_S,
        clock: Callable[[], float] = time.time,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if not access_token:
            raise ValueError("access_token must not be empty")
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.access_token = access_token
        self.url_ttl_s = url_ttl_s
        self.clock = clock
        self.chunk_size = chunk_size
        self.resolve_delay_s = 0.0
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
        sha256: str | None = None,
        file_size: int | None = None,
        media_id: str | None = None,
        chunked: bool = False,
    ) -> str:
        """Store a media and return its id.

        ``sha256``/``file_size`` override the metadata ``GET /{media_id}`` reports (to make
        Meta's metadata lie); the download always serves ``data``. ``chunked`` serves it
        without ``Content-Length`` (chunked transfer), so only the bytes tell the real size.
        """
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
        """Forget a media (as Meta does after 7 days): resolves answer 400, URLs 404."""
        self._media.pop(media_id, None)

    def expire_urls(self) -> None:
        """Every URL handed out so far answers 404 from now on."""
        self._urls.clear()

    def fail_next(self, count: int, status: int = 500, code: int | None = None) -> None:
        """The next ``count`` resolves answer ``status`` with Meta's body for ``code``.

        ``code`` defaults to 130429 ("Rate limit hit") for 429 and 131000 ("Something
        went wrong") otherwise.
        """
        error_code = code if code is not None else _default_code(status)
        self._resolve_failures.extend([(status, error_code)] * count)

    def fail_downloads_next(self, count: int, status: int = 500) -> None:
        """The next ``count`` authorised downloads answer ``status`` with no media bytes."""
        self._download_failures.extend([status] * count)

    def slow_download(self, bytes_per_s: float | None, media_id: str | None = None) -> None:
        """Throttle downloads (all, or one media's) to ``bytes_per_s``; ``None`` lifts it."""
        if bytes_per_s is not None and bytes_per_s <= 0:
            raise ValueError("bytes_per_s must be positive")
        if media_id is None:
            self._rate_all = bytes_per_s
            self._rates.clear()
        else:
            self._rates[media_id] = bytes_per_s

    def stall_download(self, media_id: str, after_bytes: int = 0) -> None:
        """Downloads of ``media_id`` send headers and ``after_bytes`` bytes, then go silent
        until the server shuts down (or :meth:`unstall_download`)."""
        self._stalls[media_id] = after_bytes

    def unstall_download(self, media_id: str) -> None:
        """Later downloads of ``media_id`` run normally (one already stalled stays stalled)."""
        self._stalls.pop(media_id, None)

    def stats(self, media_id: str) -> MediaStats:
        media = self._media[media_id]
        return MediaStats(
            resolves=media.resolves,
            downloads=tuple(
                DownloadRecord(d.status, d.bytes_sent, d.completed) for d in media.downloads
            ),
        )

    # -- the app -----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """A fresh aiohttp app over this stand-in's state (serve it any number of times)."""
        app = web.Application(middlewares=[self._bearer_auth])
        app[_RELEASE] = asyncio.Event()
        app.on_shutdown.append(self._release)
        self._routes(app)
        return app

    def _routes(self, app: web.Application) -> None:
        app.router.add_get(ATTACHMENTS_PATH, self._download)
        app.router.add_get(r"/{version:v\d+\.\d+}/{media_id}", self._resolve)

    @staticmethod
    async def _release(app: web.Application) -> None:
        app[_RELEASE].set()  # ends stalls, delays and throttling so shutdown is prompt

    @web.middleware
    async def _bearer_auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.access_token.encode()
        ):
            return graph_error(
                401, 190, _INVALID_OAUTH_MESSAGE, headers={"WWW-Authenticate": _WWW_AUTHENTICATE}
            )
        return await handler(request)

    async def _resolve(self, request: web.Request) -> web.StreamResponse:
        media_id = request.match_info["media_id"]
        media = self._media.get(media_id)
        if media is not None:
            media.resolves += 1
        await _pause(request.app, self.resolve_delay_s)
        if self._resolve_failures:
            status, code = self._resolve_failures.popleft()
            return whatsapp_error(status, code)
        if media is None:
            return graph_error(
                400, 100, _UNSUPPORTED_GET.format(id=media_id),
                error_type="GraphMethodException", subcode=33,
            )
        expires_at = self.clock() + self.url_ttl_s
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

    async def _download(self, request: web.Request) -> web.StreamResponse:
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
            or self.clock() >= issued.expires_at
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
                    await request.app[_RELEASE].wait()
                    return response  # shutting down: the transfer stays incomplete
                size = self.chunk_size
                if rate is not None:
                    size = max(1, min(size, int(rate / 20)))  # ~20 writes a second
                if stall_at is not None:
                    size = min(size, stall_at - sent)
                chunk = data[sent:sent + size]
                await response.write(chunk)
                record.bytes_sent = sent + len(chunk)
                if rate is not None and await _pause(request.app, len(chunk) / rate):
                    return response
            await response.write_eof()
            record.completed = True
        except ConnectionError:
            pass  # the client went away: bytes_sent says how far it got
        return response


async def _pause(app: web.Application, seconds: float) -> bool:
    """Sleep ``seconds`` unless the app shuts down first; True when it is shutting down."""
    release = app[_RELEASE]
    if seconds <= 0:
        return release.is_set()
    try:
        await asyncio.wait_for(release.wait(), seconds)
    except TimeoutError:
        return False
    return True


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/{GRAPH_VERSION}"


async def _start(stand_in: GraphStandIn, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(
        stand_in.make_app(), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
    except BaseException:
        await runner.cleanup()
        raise
    return runner, _base_url(host, bound_port)


@asynccontextmanager
async def serve(
    stand_in: GraphStandIn, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``stand_in`` on the running loop; yields ``http://host:port/v21.0``."""
    runner, base_url = await _start(stand_in, host, port)
    try:
        yield base_url
    finally:
        await runner.cleanup()


@contextmanager
def serve_in_thread(
    stand_in: GraphStandIn, host: str = "127.0.0.1", port: int = 0
) -> Iterator[str]:
    """Serve ``stand_in`` from a private loop in a daemon thread; yields the base URL.

    For synchronous callers (actor threads, sync tests), which must not block the
    serving loop.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="graph-stand-in", daemon=True)
    thread.start()
    try:
        runner, base_url = asyncio.run_coroutine_threadsafe(
            _start(stand_in, host, port), loop
        ).result(timeout=10)
        try:
            yield base_url
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(
                timeout=_SHUTDOWN_TIMEOUT_S + 5
            )
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()
