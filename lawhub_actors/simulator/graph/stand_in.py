"""The front of the stand-in, :class:`GraphStandIn`: it holds the access token and the
clock, owns one part per concern (:mod:`.media`, the business's numbers and templates in
:mod:`.validation`, :mod:`.limits`, :mod:`.sends`, :mod:`.webhooks`), keeps the public
setters and builds the aiohttp app, which checks the token before any handler."""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from lawhub_actors.simulator import traffic
from lawhub_actors.simulator.graph import shutdown
from lawhub_actors.simulator.graph.errors import (
    INVALID_OAUTH_MESSAGE,
    WWW_AUTHENTICATE,
    graph_error,
)
from lawhub_actors.simulator.graph.limits import (
    DEFAULT_PAIR_BURST,
    DEFAULT_PAIR_INTERVAL_S,
    DEFAULT_THROUGHPUT_MPS,
    Limits,
)
from lawhub_actors.simulator.graph.media import (
    ATTACHMENTS_PATH,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_URL_TTL_S,
    MediaStats,
    MediaStore,
)
from lawhub_actors.simulator.graph.sends import Sends
from lawhub_actors.simulator.graph.validation import (
    DEFAULT_COUNTRY_CODE,
    DEFAULT_DISPLAY_NUMBER,
    Business,
    SendRecord,
)
from lawhub_actors.simulator.graph.webhooks import StatusPost, StatusWebhooks

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SEND_ROUTE = "send"


class GraphStandIn:
    """Meta's Graph API media and messages endpoints, lookaside downloads and status
    webhooks, with its limits and injectable failures.

    ``clock`` (seconds; ``time.time`` by default) times URL expiry, the arrival of sends
    for both limits, and webhook timestamps: a fake clock makes the limits deterministic.
    """

    def __init__(
        self,
        access_token: str,
        *,
        url_ttl_s: float = DEFAULT_URL_TTL_S,
        clock: Callable[[], float] = time.time,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        throughput_mps: int | None = DEFAULT_THROUGHPUT_MPS,
        pair_interval_s: float | None = DEFAULT_PAIR_INTERVAL_S,
        pair_burst: int = DEFAULT_PAIR_BURST,
    ) -> None:
        if not access_token:
            raise ValueError("access_token must not be empty")
        self.access_token = access_token
        self.clock = clock
        self._media = MediaStore(self._now, url_ttl_s, chunk_size)
        self._limits = Limits(throughput_mps, pair_interval_s, pair_burst)
        self._business = Business()
        self._webhooks = StatusWebhooks(self._now)
        self._sends = Sends(self._now, self._business, self._limits, self._webhooks)

    def _now(self) -> float:
        """``clock`` read at each call, so that the parts follow when it is reassigned."""
        return self.clock()

    # -- settings and records, kept by the parts ---------------------------------------------

    @property
    def url_ttl_s(self) -> float:
        """How long a media URL lives after ``GET /{media_id}`` handed it out."""
        return self._media.url_ttl_s

    @url_ttl_s.setter
    def url_ttl_s(self, seconds: float) -> None:
        self._media.url_ttl_s = seconds

    @property
    def chunk_size(self) -> int:
        """The largest write of a download."""
        return self._media.chunk_size

    @chunk_size.setter
    def chunk_size(self, size: int) -> None:
        self._media.chunk_size = size

    @property
    def resolve_delay_s(self) -> float:
        """How long ``GET /{media_id}`` takes to answer."""
        return self._media.resolve_delay_s

    @resolve_delay_s.setter
    def resolve_delay_s(self, seconds: float) -> None:
        self._media.resolve_delay_s = seconds

    @property
    def send_latency_s(self) -> float:
        """How long a send takes to answer (its status webhooks do not wait for it)."""
        return self._sends.latency_s

    @send_latency_s.setter
    def send_latency_s(self, seconds: float) -> None:
        self._sends.latency_s = seconds

    @property
    def throughput_mps(self) -> int | None:
        """The throughput of numbers without :meth:`set_throughput`."""
        return self._limits.throughput_mps

    @throughput_mps.setter
    def throughput_mps(self, mps: int | None) -> None:
        self._limits.throughput_mps = mps

    @property
    def pair_interval_s(self) -> float | None:
        """The pair rate's interval (see :meth:`set_pair_rate`)."""
        return self._limits.pair_interval_s

    @pair_interval_s.setter
    def pair_interval_s(self, interval_s: float | None) -> None:
        self._limits.pair_interval_s = interval_s

    @property
    def pair_burst(self) -> int:
        """The pair rate's burst (see :meth:`set_pair_rate`)."""
        return self._limits.pair_burst

    @pair_burst.setter
    def pair_burst(self, burst: int) -> None:
        self._limits.pair_burst = burst

    @property
    def sends(self) -> list[SendRecord]:
        """Every send request so far, in arrival order, answered or not."""
        return self._sends.records

    @property
    def status_posts(self) -> list[StatusPost]:
        """Every attempt to POST a status webhook so far."""
        return self._webhooks.posts

    # -- media -------------------------------------------------------------------------------

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
        return self._media.add_media(
            data, mime_type, sha256=sha256, file_size=file_size, media_id=media_id, chunked=chunked
        )

    def remove_media(self, media_id: str) -> None:
        """Forget a media (as Meta does after 7 days): resolves answer 400, URLs 404."""
        self._media.remove_media(media_id)

    def expire_urls(self) -> None:
        """Every URL handed out so far answers 404 from now on."""
        self._media.expire_urls()

    def fail_next(self, count: int, status: int = 500, code: int | None = None) -> None:
        """The next ``count`` resolves answer ``status`` with Meta's body for ``code``.

        ``code`` defaults to 130429 ("Rate limit hit") for 429 and 131000 ("Something
        went wrong") otherwise.
        """
        self._media.fail_next(count, status, code)

    def fail_downloads_next(self, count: int, status: int = 500) -> None:
        """The next ``count`` authorised downloads answer ``status`` with no media bytes."""
        self._media.fail_downloads_next(count, status)

    def slow_download(self, bytes_per_s: float | None, media_id: str | None = None) -> None:
        """Throttle downloads (all, or one media's) to ``bytes_per_s``; ``None`` lifts it."""
        self._media.slow_download(bytes_per_s, media_id)

    def stall_download(self, media_id: str, after_bytes: int = 0) -> None:
        """Downloads of ``media_id`` send headers and ``after_bytes`` bytes, then go silent
        until the server shuts down (or :meth:`unstall_download`)."""
        self._media.stall_download(media_id, after_bytes)

    def unstall_download(self, media_id: str) -> None:
        """Later downloads of ``media_id`` run normally (one already stalled stays stalled)."""
        self._media.unstall_download(media_id)

    def stats(self, media_id: str) -> MediaStats:
        """What the clients did with ``media_id``: its resolves and downloads."""
        return self._media.stats(media_id)

    # -- sending: the business and its limits ------------------------------------------------

    def add_phone_number(
        self,
        phone_number_id: str,
        display_phone_number: str = DEFAULT_DISPLAY_NUMBER,
        *,
        country_code: str = DEFAULT_COUNTRY_CODE,
        waba_id: str = traffic.WABA_ID,
    ) -> None:
        """Register a business phone number. Once any is registered, sends from other ids
        are refused as Meta refuses unknown objects (400, code 100, subcode 33); before,
        every id is accepted as an Indonesian number of the default WABA.

        ``country_code`` is what Meta prepends to a ``to`` without ``+``.
        """
        self._business.add_phone_number(
            phone_number_id, display_phone_number, country_code=country_code, waba_id=waba_id
        )

    def add_template(
        self,
        name: str,
        language: str,
        *,
        params: int = 0,
        category: str = "UTILITY",
        status: str = "APPROVED",
    ) -> None:
        """Register a message template. Once any is registered, template sends are checked
        like Meta checks them: unknown name/language or not approved -> 132001, PAUSED ->
        132015, DISABLED -> 132016, a body parameter count other than ``params`` -> 132000.
        Before, any template is accepted (with category UTILITY)."""
        self._business.add_template(
            name, language, params=params, category=category, status=status
        )

    def set_throughput(self, phone_number_id: str, mps: int | None) -> None:
        """Messages per second accepted from ``phone_number_id`` (``None``: unlimited)."""
        self._limits.set_throughput(phone_number_id, mps)

    def throughput_of(self, phone_number_id: str) -> int | None:
        """The messages per second accepted from ``phone_number_id`` (``None``: unlimited)."""
        return self._limits.throughput_of(phone_number_id)

    def set_pair_rate(self, interval_s: float | None, burst: int = DEFAULT_PAIR_BURST) -> None:
        """One message per ``interval_s`` to the same recipient, bursts up to ``burst``
        (``None``: no pair limit). Forgets the quota used so far."""
        self._limits.set_pair_rate(interval_s, burst)

    # -- sending: scripted failures ----------------------------------------------------------

    def fail_sends_next(self, count: int, status: int = 400, code: int | None = None) -> None:
        """The next ``count`` valid sends are refused with ``status`` and Meta's body for
        ``code`` (default 130429 for 429, else 131000); nothing is sent, no quota used."""
        self._sends.fail_sends_next(count, status, code)

    def timeout_sends_next(self, count: int, *, sent: bool = False) -> None:
        """The next ``count`` valid sends are read and never answered (until the server
        shuts down, when the connection is dropped). With ``sent``, Meta took the message
        all the same: limits count it and its status webhooks follow."""
        self._sends.timeout_sends_next(count, sent=sent)

    def accept_then_fail_next(self, count: int, status: int = 500, code: int | None = None) -> None:
        """The next ``count`` accepted sends go out (limits count them, status webhooks
        follow) but are answered ``status`` with Meta's body for ``code``."""
        self._sends.accept_then_fail_next(count, status, code)

    def fail_status_for_next(self, count: int, code: int, *, after_sent: bool = True) -> None:
        """The next ``count`` accepted sends end in a ``failed`` status carrying Meta's
        ``errors[]`` for ``code`` instead of delivered/read (after ``sent`` when
        ``after_sent`` and ``sent`` is among the delivered statuses)."""
        self._sends.fail_status_for_next(count, code, after_sent=after_sent)

    # -- sending: status webhooks ------------------------------------------------------------

    def deliver_statuses_to(
        self,
        url: str,
        app_secret: bytes,
        *,
        delay_s: float = 0.05,
        statuses: Iterable[str] = ("sent", "delivered", "read"),
        attempts: int = 4,
        retry_delay_s: float = 0.1,
    ) -> None:
        """After each accepted send, POST its status webhooks to ``url``, one at a time
        in order, each ``delay_s`` after the previous one was acknowledged, signed with
        ``app_secret``. A non-200 answer or a transport error is retried up to
        ``attempts`` tries in all (``retry_delay_s``, doubling), then that status is given
        up. Applies to sends accepted from now on."""
        self._webhooks.deliver_statuses_to(
            url, app_secret, delay_s=delay_s, statuses=statuses, attempts=attempts,
            retry_delay_s=retry_delay_s,
        )

    def stop_statuses(self) -> None:
        """Sends accepted from now on get no status webhooks (those under way go on)."""
        self._webhooks.stop_statuses()

    # -- the app -----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """A fresh aiohttp app over this stand-in's state (serve it any number of times)."""
        app = web.Application(middlewares=[self._bearer_auth])
        shutdown.install(app)
        StatusWebhooks.install(app)
        self._routes(app)
        return app

    def _routes(self, app: web.Application) -> None:
        app.router.add_get(ATTACHMENTS_PATH, self._media.download)
        app.router.add_get(r"/{version:v\d+\.\d+}/{media_id}", self._media.resolve)
        app.router.add_post(
            r"/{version:v\d+\.\d+}/{phone_number_id}/messages", self._sends.handle,
            name=_SEND_ROUTE,
        )

    @web.middleware
    async def _bearer_auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.access_token.encode()
        ):
            if request.match_info.route.name == _SEND_ROUTE:
                record = await self._sends.record(request)
                record.status, record.code = 401, 190
            return graph_error(
                401, 190, INVALID_OAUTH_MESSAGE, headers={"WWW-Authenticate": WWW_AUTHENTICATE}
            )
        return await handler(request)
