"""A local stand-in for Meta's Graph API (media and sending), served by aiohttp.

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

    POST /{version}/{phone_number_id}/messages      Authorization: Bearer <token>
    200  {"messaging_product": "whatsapp", "contacts": [{"input": "<to>", "wa_id": "<digits>"}],
          "messages": [{"id": "wamid.…"}]}          (accepted, not delivered)
    400  code 100: a required parameter missing or invalid ("(#100) The parameter to is
         required."), an unknown phone number id (subcode 33, GraphMethodException)
    400  code 130429 over the number's throughput, 131056 over the pair rate,
         132000 / 132001 / 132015 / 132016 when templates are registered
    401  code 190 (token)

Every error body is Meta's: ``{"error": {"message", "type", "code",
["error_subcode"], ["error_data"], "fbtrace_id"}}`` (see :func:`graph_error`).

State and failure modes are set on :class:`GraphStandIn` — ``add_media``,
``expire_urls``, ``fail_next``, ``fail_downloads_next``, ``slow_download``,
``stall_download``, ``resolve_delay_s`` — and what the clients did is read
back with :meth:`GraphStandIn.stats` (resolves, and per download its status
and the bytes the server actually wrote before the client went away).

Sending (see :meth:`GraphStandIn._send` for the order of the checks): the throughput
limit per phone number (``throughput_mps``, :meth:`~GraphStandIn.set_throughput`) counts
accepted messages over any sliding 1-second window of arrival time; the pair rate per
(phone number, recipient) is a GCRA of one message per ``pair_interval_s`` with bursts
of ``pair_burst`` (:meth:`~GraphStandIn.set_pair_rate`); ``None`` switches either off.
Failures are scripted with ``fail_sends_next``, ``timeout_sends_next``,
``accept_then_fail_next`` and ``send_latency_s``; every request is kept in ``sends``
(:class:`SendRecord`, with its arrival time by ``clock``). After
:meth:`~GraphStandIn.deliver_statuses_to`, each accepted message is followed by its
status webhooks (signed, in order, retried on a non-200), recorded in ``status_posts``;
``fail_status_for_next`` turns the next ones into ``failed`` with Meta's ``errors[]``.

Run it with :func:`serve` (async, on the caller's loop) or
:func:`serve_in_thread` (its own loop in a daemon thread, for synchronous
code such as actors). Both yield the base URL, ``http://127.0.0.1:<port>/v21.0``,
which is what ``LAWHUB_GRAPH_BASE_URL`` takes. Later additions go into
:meth:`GraphStandIn._routes`.

The setters are plain assignments and ``deque`` operations, so calling them
from another thread than the serving loop's is safe under the GIL; counters
are written only by the serving loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets as random_source
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
from aiohttp import web

from lawhub_actors.simulator import traffic

__all__ = [
    "ATTACHMENTS_PATH",
    "GRAPH_VERSION",
    "DownloadRecord",
    "GraphStandIn",
    "MediaStats",
    "SendRecord",
    "StatusPost",
    "graph_error",
    "serve",
    "serve_in_thread",
    "whatsapp_error",
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
    # sending
    0: ("AuthException", "We were unable to authenticate the app user"),
    3: ("API Method", "Capability or permissions issue"),
    10: ("Permission denied", "Permission is either not granted or has been removed"),
    190: ("Access token has expired", "The access token has expired"),
    200: ("API Permission", "Permission is either not granted or has been removed"),
    368: ("Temporarily blocked for policies violations",
          "The WhatsApp Business Account has been restricted for violating a platform policy"),
    130472: ("User's number is part of an experiment",
             "Failed to send message because this user's phone number is part of an experiment"),
    131005: ("Access denied", "Permission is either not granted or has been removed"),
    131008: ("Required parameter is missing", "A required parameter is missing"),
    131009: ("Parameter value is not valid", "One or more parameter values are invalid"),
    131021: ("Recipient cannot be sender", "Sender and recipient phone number is the same"),
    131026: ("Message undeliverable", "Message Undeliverable."),
    131031: ("Account has been locked", "Business Account locked"),
    131042: ("Business eligibility payment issue",
             "There was an error related to your payment method"),
    131045: ("Incorrect certificate", "Message failed to send due to a phone number "
             "registration error"),
    131047: ("Re-engagement message", "Message failed to send because more than 24 hours "
             "have passed since the customer last replied to this number."),
    131048: ("Spam rate limit hit", "Message failed to send because there are restrictions "
             "on how many messages can be sent from this phone number."),
    131049: ("This message was not delivered to maintain healthy ecosystem engagement.",
             "In order to maintain a healthy ecosystem engagement, the message failed to be "
             "delivered."),
    131050: ("Unable to deliver the message. This recipient has chosen to stop receiving "
             "marketing messages on WhatsApp from your business.",
             "The user has stopped marketing messages from this business."),
    131051: ("Unsupported message type", "Message type is not currently supported."),
    131053: ("Media upload error", "Unable to upload the media used in the message."),
    131056: ("(Business Account, Consumer Account) pair rate limit hit",
             "Message failed to send because there were too many messages sent from this "
             "phone number to the same phone number in a short period of time."),
    131057: ("Account in maintenance mode", "Business Account is in maintenance mode"),
    132000: ("Number of parameters does not match the expected number of params",
             "The number of variable parameter values does not match the template"),
    132001: ("Template name does not exist in the translation",
             "The template does not exist in the specified language or has not been approved"),
    132005: ("Translated text too long", "Translated text is too long."),
    132007: ("Template Format Character Policy Violated",
             "Template content violates a WhatsApp policy."),
    132012: ("Parameter format does not match format in the created template",
             "Variable parameter values formatted incorrectly."),
    132015: ("Template is Paused", "Template is paused due to low quality"),
    132016: ("Template is Disabled", "Template has been paused too many times due to low "
             "quality and is now permanently disabled."),
    132068: ("Flow is blocked", "Flow is in blocked state."),
    132069: ("Flow is throttled", "Flow is in throttled state"),
    133010: ("Phone number not registered", "Phone number not registered on the Whatsapp "
             "Business Platform."),
    135000: ("Generic user error", "Message failed to send because of an unknown error "
             "with your request parameters."),
}
_WWW_AUTHENTICATE = 'OAuth "Facebook Platform" "invalid_token" "Cannot parse access token"'

_UNSUPPORTED_POST = (
    "Unsupported post request. Object with ID '{id}' does not exist, cannot be loaded due to "
    "missing permissions, or does not support this operation. Please read the Graph API "
    "documentation at https://developers.facebook.com/docs/graph-api"
)

DEFAULT_THROUGHPUT_MPS = 80
DEFAULT_PAIR_INTERVAL_S = 6.0
DEFAULT_PAIR_BURST = 45
DEFAULT_DISPLAY_NUMBER = "6281110000001"
DEFAULT_COUNTRY_CODE = "62"
TEXT_BODY_MAX = 4096
CALLBACK_DATA_MAX = 512
MESSAGE_TYPES = (
    "audio", "contacts", "document", "image", "interactive", "location", "reaction",
    "sticker", "template", "text", "video",
)
STATUS_KINDS = ("sent", "delivered", "read", "played")
_SEND_ROUTE = "send"
_PHONE_FORMATTING = re.compile(r"[\s().-]")
_PARAM_WHITESPACE = re.compile(r"[\n\t]| {5,}")
_WEBHOOK_TIMEOUT_S = 10.0

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


@dataclass(slots=True)
class SendRecord:
    """One ``POST /{version}/{phone_number_id}/messages`` as the stand-in saw and answered it.

    The request fields are taken as sent, whatever their validity (``None`` when absent or
    of the wrong JSON type).
    """

    at: float  # arrival time, by the stand-in's ``clock``
    phone_number_id: str
    to: str | None  # as given
    wa_id: str | None  # the recipient ``to`` resolved to (None when it was refused before)
    type: str | None  # as given ("text" when absent: Meta's default)
    body: Any  # text: the body string; template and other types: their object
    callback: str | None  # ``biz_opaque_callback_data``
    request: Any  # the whole JSON document (None when the body was not JSON)
    status: int | None = None  # HTTP status answered; None: not (yet) answered
    code: int | None = None  # Meta's ``error.code`` answered; None for a 200
    wamid: str | None = None  # set when Meta took the message, even if the answer failed

    @property
    def sent(self) -> bool:
        """Meta took the message: it goes out and its status webhooks follow."""
        return self.wamid is not None


@dataclass(frozen=True, slots=True)
class StatusPost:
    """One attempt to POST a status webhook to the gateway."""

    wamid: str
    status: str  # sent / delivered / read / played / failed
    attempt: int  # 1 for the first try
    answer: int | None  # the gateway's HTTP status; None: transport error or timeout
    at: float  # by the stand-in's ``clock``
    callback: str | None


_Mode = Literal["fail", "timeout", "timeout_after_send", "accept_then_fail"]


@dataclass(frozen=True, slots=True)
class _Scripted:
    mode: _Mode
    status: int = 0
    code: int = 0

    @property
    def before_limits(self) -> bool:
        """Applies to the next valid request; the others only to the next accepted one."""
        return self.mode in ("fail", "timeout")


@dataclass(frozen=True, slots=True)
class _StatusTarget:
    url: str
    app_secret: bytes
    delay_s: float
    statuses: tuple[str, ...]
    attempts: int
    retry_delay_s: float


@dataclass(frozen=True, slots=True)
class _PhoneNumber:
    display: str
    country_code: str
    waba_id: str


@dataclass(frozen=True, slots=True)
class _Template:
    params: int
    category: str
    status: str


@dataclass(frozen=True, slots=True)
class _StatusJob:
    """The status webhooks one accepted message gets: ``plan`` is (status, error or None)."""

    target: _StatusTarget
    record: SendRecord
    number: _PhoneNumber
    pricing: dict[str, Any]
    plan: list[tuple[str, dict[str, Any] | None]]


@dataclass(slots=True)
class _Delivery:
    """Per served app: the client session status webhooks go out on, and their tasks."""

    session: aiohttp.ClientSession | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


_DELIVERY = web.AppKey("status_delivery", _Delivery)
_DEFAULT_NUMBER = _PhoneNumber(DEFAULT_DISPLAY_NUMBER, DEFAULT_COUNTRY_CODE, traffic.WABA_ID)


class _Refused(Exception):
    """A send answered with an error (raised inside the checks, turned into the response)."""

    def __init__(self, response: web.Response, code: int) -> None:
        super().__init__(code)
        self.response = response
        self.code = code


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
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        _check_throughput(throughput_mps)
        _check_pair_rate(pair_interval_s, pair_burst)
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
        # sending
        self.throughput_mps = throughput_mps  # for numbers without set_throughput
        self.pair_interval_s = pair_interval_s
        self.pair_burst = pair_burst
        self.send_latency_s = 0.0
        self.sends: list[SendRecord] = []
        self.status_posts: list[StatusPost] = []
        self._throughputs: dict[str, int | None] = {}
        self._windows: dict[str, deque[float]] = {}
        self._pair_tat: dict[tuple[str, str], float] = {}
        self._send_script: deque[_Scripted] = deque()
        self._status_failures: deque[tuple[int, bool]] = deque()
        self._status_target: _StatusTarget | None = None
        self._numbers: dict[str, _PhoneNumber] = {}
        self._templates: dict[tuple[str, str], _Template] = {}

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

    # -- sending: state and limits ----------------------------------------------------------

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
        if not country_code.isdigit():
            raise ValueError("country_code must be digits")
        self._numbers[phone_number_id] = _PhoneNumber(
            display_phone_number, country_code, waba_id
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
        if params < 0:
            raise ValueError("params must not be negative")
        self._templates[(name, language)] = _Template(params, category.upper(), status.upper())

    def set_throughput(self, phone_number_id: str, mps: int | None) -> None:
        """Messages per second accepted from ``phone_number_id`` (``None``: unlimited)."""
        _check_throughput(mps)
        self._throughputs[phone_number_id] = mps

    def throughput_of(self, phone_number_id: str) -> int | None:
        return self._throughputs.get(phone_number_id, self.throughput_mps)

    def set_pair_rate(self, interval_s: float | None, burst: int = DEFAULT_PAIR_BURST) -> None:
        """One message per ``interval_s`` to the same recipient, bursts up to ``burst``
        (``None``: no pair limit). Forgets the quota used so far."""
        _check_pair_rate(interval_s, burst)
        self.pair_interval_s = interval_s
        self.pair_burst = burst
        self._pair_tat.clear()

    # -- sending: injected failures ----------------------------------------------------------

    def fail_sends_next(self, count: int, status: int = 400, code: int | None = None) -> None:
        """The next ``count`` valid sends are refused with ``status`` and Meta's body for
        ``code`` (default 130429 for 429, else 131000); nothing is sent, no quota used."""
        error_code = code if code is not None else _default_code(status)
        self._send_script.extend([_Scripted("fail", status, error_code)] * _count(count))

    def timeout_sends_next(self, count: int, *, sent: bool = False) -> None:
        """The next ``count`` valid sends are read and never answered (until the server
        shuts down, when the connection is dropped). With ``sent``, Meta took the message
        all the same: limits count it and its status webhooks follow."""
        mode: _Mode = "timeout_after_send" if sent else "timeout"
        self._send_script.extend([_Scripted(mode)] * _count(count))

    def accept_then_fail_next(self, count: int, status: int = 500, code: int | None = None) -> None:
        """The next ``count`` accepted sends go out (limits count them, status webhooks
        follow) but are answered ``status`` with Meta's body for ``code``."""
        error_code = code if code is not None else _default_code(status)
        self._send_script.extend(
            [_Scripted("accept_then_fail", status, error_code)] * _count(count)
        )

    def fail_status_for_next(self, count: int, code: int, *, after_sent: bool = True) -> None:
        """The next ``count`` accepted sends end in a ``failed`` status carrying Meta's
        ``errors[]`` for ``code`` instead of delivered/read (after ``sent`` when
        ``after_sent`` and ``sent`` is among the delivered statuses)."""
        self._status_failures.extend([(code, after_sent)] * _count(count))

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
        kinds = tuple(statuses)
        unknown = [kind for kind in kinds if kind not in STATUS_KINDS]
        if unknown:
            raise ValueError(f"unknown statuses {unknown}; known: {STATUS_KINDS}")
        if delay_s < 0 or retry_delay_s < 0:
            raise ValueError("delays must not be negative")
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._status_target = _StatusTarget(
            url, bytes(app_secret), delay_s, kinds, attempts, retry_delay_s
        )

    def stop_statuses(self) -> None:
        """Sends accepted from now on get no status webhooks (those under way go on)."""
        self._status_target = None

    # -- the app -----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """A fresh aiohttp app over this stand-in's state (serve it any number of times)."""
        app = web.Application(middlewares=[self._bearer_auth])
        app[_RELEASE] = asyncio.Event()
        app[_DELIVERY] = _Delivery()
        app.on_shutdown.append(self._release)
        app.on_cleanup.append(_stop_delivery)
        self._routes(app)
        return app

    def _routes(self, app: web.Application) -> None:
        app.router.add_get(ATTACHMENTS_PATH, self._download)
        app.router.add_get(r"/{version:v\d+\.\d+}/{media_id}", self._resolve)
        app.router.add_post(
            r"/{version:v\d+\.\d+}/{phone_number_id}/messages", self._send, name=_SEND_ROUTE
        )

    @staticmethod
    async def _release(app: web.Application) -> None:
        app[_RELEASE].set()  # ends stalls, delays and throttling so shutdown is prompt

    @web.middleware
    async def _bearer_auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.access_token.encode()
        ):
            if request.match_info.route.name == _SEND_ROUTE:
                record = await self._record_send(request)
                record.status, record.code = 401, 190
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


    # -- sending ----------------------------------------------------------------------------

    async def _send(self, request: web.Request) -> web.StreamResponse:
        """``POST /{version}/{phone_number_id}/messages``.

        In order: the phone number id (registered ones only, once any is), the request
        (code 100), registered templates (1320xx), a scripted failure or timeout (no quota
        used), the throughput limit (130429), the pair rate (131056); then the message
        is taken (quota used, status webhooks scheduled) and answered 200, or as scripted
        by ``accept_then_fail_next`` / ``timeout_sends_next(sent=True)``. The answer
        waits ``send_latency_s`` (the statuses do not: one can beat the answer, as with
        Meta).
        """
        record = await self._record_send(request)
        response: web.Response | None
        try:
            response = self._take(request.app, record)
        except _Refused as refused:
            record.status, record.code = refused.response.status, refused.code
            response = refused.response
        if await _pause(request.app, self.send_latency_s):
            response = None  # shutting down
        if response is None:  # a timeout: say nothing until the server goes away
            await request.app[_RELEASE].wait()
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        return response

    async def _record_send(self, request: web.Request) -> SendRecord:
        at = self.clock()
        try:
            document: Any = json.loads(await request.read())
        except ValueError:
            document = None
        fields = document if isinstance(document, dict) else {}
        kind = fields.get("type", "text")
        kind = kind if isinstance(kind, str) else None
        body: Any = fields.get(kind) if kind is not None else None
        if kind == "text" and isinstance(body, dict):
            body = body.get("body")
        record = SendRecord(
            at=at,
            phone_number_id=request.match_info["phone_number_id"],
            to=_str_or_none(fields.get("to")),
            wa_id=None,
            type=kind,
            body=body,
            callback=_str_or_none(fields.get("biz_opaque_callback_data")),
            request=document,
        )
        self.sends.append(record)
        return record

    def _take(self, app: web.Application, record: SendRecord) -> web.Response | None:
        """The answer to a send (None: never answer), after every check and side effect."""
        number = self._number(record.phone_number_id)
        template = self._validate(record, number)
        self._check_template(record, template)
        if self._send_script and self._send_script[0].before_limits:
            scripted = self._send_script.popleft()
            if scripted.mode == "timeout":
                return None
            raise _Refused(whatsapp_error(scripted.status, scripted.code), scripted.code)
        self._check_limits(record)
        # Meta takes the message
        self._use_quota(record)
        record.wamid = traffic.wamid()
        failure = self._status_failures.popleft() if self._status_failures else None
        self._schedule_statuses(app, record, number, template, failure)
        scripted_after = None
        if self._send_script and not self._send_script[0].before_limits:
            scripted_after = self._send_script.popleft()
        if scripted_after is not None and scripted_after.mode == "timeout_after_send":
            return None
        if scripted_after is not None:
            raise _Refused(
                whatsapp_error(scripted_after.status, scripted_after.code), scripted_after.code
            )
        record.status = 200
        message: dict[str, str] = {"id": record.wamid}
        if record.type == "template":
            message["message_status"] = "accepted"
        return web.json_response({
            "messaging_product": "whatsapp",
            "contacts": [{"input": record.to, "wa_id": record.wa_id}],
            "messages": [message],
        })

    def _number(self, phone_number_id: str) -> _PhoneNumber:
        if not self._numbers:
            return _DEFAULT_NUMBER
        number = self._numbers.get(phone_number_id)
        if number is None:
            raise _Refused(
                graph_error(
                    400, 100, _UNSUPPORTED_POST.format(id=phone_number_id),
                    error_type="GraphMethodException", subcode=33,
                ),
                100,
            )
        return number

    def _validate(self, record: SendRecord, number: _PhoneNumber) -> dict[str, Any] | None:
        """Meta's parameter checks (code 100); fills ``record.wa_id``; the template object."""
        document = record.request if isinstance(record.request, dict) else {}
        product = document.get("messaging_product")
        if product is None:
            raise _required("messaging_product")
        if product != "whatsapp":
            raise _invalid(
                f'Param messaging_product must be one of {{WHATSAPP}} - got "{product}".'
            )
        recipient_type = document.get("recipient_type", "individual")
        if recipient_type not in ("individual", "group"):
            raise _invalid(
                "Param recipient_type must be one of {INDIVIDUAL, GROUP} - got "
                f'"{recipient_type}".'
            )
        to = document.get("to")
        if to is None or to == "":
            raise _required("to")
        if not isinstance(to, str):
            raise _invalid("Param to must be a string.")
        record.wa_id = _wa_id(to, number.country_code)
        if record.wa_id is None:
            raise _invalid("Invalid parameter", details="Invalid value for parameter 'to'")
        kind = document.get("type", "text")
        if kind not in MESSAGE_TYPES:
            raise _invalid(
                f"Param type must be one of {{{', '.join(t.upper() for t in MESSAGE_TYPES)}}}"
                f' - got "{kind}".'
            )
        callback = document.get("biz_opaque_callback_data")
        if callback is not None and not isinstance(callback, str):
            raise _invalid("Param biz_opaque_callback_data must be a string.")
        if callback is not None and len(callback) > CALLBACK_DATA_MAX:
            raise _invalid(
                f"Param biz_opaque_callback_data must be at most {CALLBACK_DATA_MAX} "
                "characters long."
            )
        if kind == "text":
            _validate_text(document.get("text"))
            return None
        if kind == "template":
            return _validate_template(document.get("template"))
        if not isinstance(document.get(kind), dict):
            raise _required(kind)
        return None

    def _check_limits(self, record: SendRecord) -> None:
        at = record.at
        limit = self.throughput_of(record.phone_number_id)
        window = self._windows.get(record.phone_number_id)
        if window is not None:
            while window and window[0] <= at - 1.0:
                window.popleft()
        if limit is not None and window is not None and len(window) >= limit:
            raise _Refused(whatsapp_error(400, 130429), 130429)
        interval = self.pair_interval_s
        if interval is not None and record.wa_id is not None:
            tat = self._pair_tat.get((record.phone_number_id, record.wa_id), at)
            if max(tat, at) - at > (self.pair_burst - 1) * interval + 1e-9:
                raise _Refused(whatsapp_error(400, 131056), 131056)

    def _use_quota(self, record: SendRecord) -> None:
        self._windows.setdefault(record.phone_number_id, deque()).append(record.at)
        if self.pair_interval_s is not None and record.wa_id is not None:
            key = (record.phone_number_id, record.wa_id)
            self._pair_tat[key] = max(self._pair_tat.get(key, record.at), record.at) + (
                self.pair_interval_s
            )

    def _check_template(self, record: SendRecord, template: dict[str, Any] | None) -> None:
        if template is None or not self._templates:
            return
        name, language = template["name"], template["language"]["code"]
        known = self._templates.get((name, language))
        if known is None or known.status not in ("APPROVED", "PAUSED", "DISABLED"):
            raise _refused(
                400, 132001, f"template name ({name}) does not exist in {language}"
            )
        if known.status == "PAUSED":
            raise _refused(400, 132015, f"Template {name} is paused due to low quality")
        if known.status == "DISABLED":
            raise _refused(400, 132016, f"Template {name} is disabled")
        given = _body_params(template)
        if given != known.params:
            raise _refused(
                400, 132000,
                f"body: number of localizable_params ({given}) does not match the expected "
                f"number of params ({known.params})",
            )

    def _pricing(self, record: SendRecord, template: dict[str, Any] | None) -> dict[str, Any]:
        if template is None:
            return traffic.status_pricing("service", billable=False, kind="free_customer_service")
        known = self._templates.get((template["name"], template["language"]["code"]))
        category = known.category.lower() if known is not None else "utility"
        return traffic.status_pricing(category)

    def _schedule_statuses(
        self,
        app: web.Application,
        record: SendRecord,
        number: _PhoneNumber,
        template: dict[str, Any] | None,
        failure: tuple[int, bool] | None,
    ) -> None:
        target = self._status_target
        if target is None:
            return
        plan: list[tuple[str, dict[str, Any] | None]]
        if failure is None:
            plan = [(kind, None) for kind in target.statuses]
        else:
            code, after_sent = failure
            title, details = _WHATSAPP_ERRORS.get(
                code, ("Something went wrong", "Something went wrong")
            )
            error = traffic.status_error(code, title, details)
            plan = [("sent", None)] if after_sent and "sent" in target.statuses else []
            plan.append(("failed", error))
        delivery = app[_DELIVERY]
        job = _StatusJob(target, record, number, self._pricing(record, template), plan)
        task = asyncio.get_running_loop().create_task(self._post_statuses(delivery, job))
        delivery.tasks.add(task)
        task.add_done_callback(delivery.tasks.discard)

    async def _post_statuses(self, delivery: _Delivery, job: _StatusJob) -> None:
        target, record, number = job.target, job.record, job.number
        assert record.wamid is not None and record.wa_id is not None
        if delivery.session is None:
            delivery.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=_WEBHOOK_TIMEOUT_S)
            )
        session = delivery.session
        for kind, error in job.plan:
            await asyncio.sleep(target.delay_s)
            change = traffic.outbound_status(
                record.phone_number_id, record.wa_id, record.wamid, kind,
                timestamp=int(self.clock()), callback=record.callback,
                display=number.display,
                pricing=None if error is not None else job.pricing,
                errors=[error] if error is not None else None,
            )
            document = traffic.envelope(change, waba_id=number.waba_id)
            post = traffic.signed(document, target.app_secret)
            headers = {**post.headers, "User-Agent": "facebookexternalua"}
            for attempt in range(1, target.attempts + 1):
                answer: int | None = None
                try:
                    async with session.post(target.url, data=post.body, headers=headers) as reply:
                        answer = reply.status
                        await reply.read()
                except (aiohttp.ClientError, TimeoutError):
                    answer = None
                self.status_posts.append(
                    StatusPost(record.wamid, kind, attempt, answer, self.clock(), record.callback)
                )
                if answer == 200:
                    break
                if attempt < target.attempts:
                    await asyncio.sleep(target.retry_delay_s * 2 ** (attempt - 1))


async def _stop_delivery(app: web.Application) -> None:
    delivery = app[_DELIVERY]
    tasks = list(delivery.tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if delivery.session is not None:
        await delivery.session.close()
        delivery.session = None


def _count(count: int) -> int:
    if count < 0:
        raise ValueError("count must not be negative")
    return count


def _check_throughput(mps: int | None) -> None:
    if mps is not None and mps < 1:
        raise ValueError("throughput must be at least 1 message per second (or None)")


def _check_pair_rate(interval_s: float | None, burst: int) -> None:
    if interval_s is not None and interval_s <= 0:
        raise ValueError("pair interval must be positive (or None)")
    if burst < 1:
        raise ValueError("pair burst must be at least 1")


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _wa_id(to: str, country_code: str) -> str | None:
    """The recipient Meta makes of ``to``: formatting dropped; without ``+`` the business
    number's country code is prepended (as Meta does)."""
    international = to.strip().startswith("+")
    digits = _PHONE_FORMATTING.sub("", to).removeprefix("+")
    if not digits.isdigit() or not digits.isascii():
        return None
    wa_id = digits if international else country_code + digits
    return wa_id if 7 <= len(wa_id) <= 15 else None


def _refused(status: int, code: int, details: str) -> _Refused:
    title, _ = _WHATSAPP_ERRORS.get(code, ("Something went wrong", ""))
    return _Refused(graph_error(status, code, f"(#{code}) {title}", details=details), code)


def _required(parameter: str) -> _Refused:
    return _Refused(graph_error(400, 100, f"(#100) The parameter {parameter} is required."), 100)


def _invalid(message: str, *, details: str | None = None) -> _Refused:
    return _Refused(graph_error(400, 100, f"(#100) {message}", details=details), 100)


def _validate_text(text: object) -> None:
    body = text.get("body") if isinstance(text, dict) else None
    if not isinstance(body, str) or not body:
        raise _required("text.body")
    if len(body) > TEXT_BODY_MAX:
        raise _invalid(f"Param text['body'] must be at most {TEXT_BODY_MAX} characters long.")


def _validate_template(template: object) -> dict[str, Any]:
    if not isinstance(template, dict):
        raise _required("template")
    if not isinstance(template.get("name"), str) or not template["name"]:
        raise _required("template.name")
    language = template.get("language")
    if not isinstance(language, dict) or not isinstance(language.get("code"), str):
        raise _required("template.language")
    components = template.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise _invalid("Param template['components'] must be an array of objects.")
    for component in components:
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list):
            raise _invalid("Param template['components'][0]['parameters'] must be an array.")
        for parameter in parameters:
            if not isinstance(parameter, dict) or parameter.get("type") != "text":
                continue
            text = parameter.get("text")
            if not isinstance(text, str) or not text:
                raise _invalid(
                    "Invalid parameter",
                    details="Parameter 'text' is mandatory for component parameter type 'text'",
                )
            if _PARAM_WHITESPACE.search(text):
                raise _invalid(
                    "Invalid parameter",
                    details="Param text cannot have new-line/tab characters or more than 4 "
                    "consecutive spaces",
                )
    return template


def _body_params(template: dict[str, Any]) -> int:
    return sum(
        len(component.get("parameters", []))
        for component in template.get("components", [])
        if component.get("type") == "body"
    )


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
