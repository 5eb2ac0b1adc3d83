"""Structured logging: JSON lines on stderr that never carry personal data or secrets.

:func:`configure` sets up structlog and routes the standard library's
``logging`` (aiohttp, pykka) through the same renderer, so every line on the
stream passes :func:`redact`:

- Values of sensitive keys (any nesting depth, key compared case-insensitively
  with ``-`` read as ``_``) become ``"[redacted]"``: message content (``body``,
  ``text``, ``caption``, ``message``, ``params``, ``payload``, ...), people's
  identifiers (``phone``, ``display``, ``wa_id``, ``to``, ``from``,
  ``user_id``, ``profile``, ...) and credentials (``token``, ``secret``,
  ``password``, ``authorization``, ``signature``, ...). Keys *containing*
  ``token``, ``secret``, ``password``, ``phone``, ``wa_id``, ``body``,
  ``caption`` or ``signature`` count too (``customer_phone``, ``access_token``).
- Every other string, the event name included, has phone-number-like digit
  runs (8+ digits, optional ``+``, single spaces, dashes or parentheses
  between digits) replaced by ``"[phone]"``. ISO dates in free text are
  masked too: the safe side of the trade.
- Registered secret values are replaced by ``"[redacted]"`` everywhere,
  whatever their length (one shorter than :data:`MIN_SECRET_LENGTH` only as
  a whole word, so a 3-letter verify token does not blank every word
  holding those letters). Credentials in free text are too, whoever wrote
  them: ``Bearer <token>``, ``Basic <token>`` and a query's or form's
  ``token=``, ``hub.verify_token=``, ``access_token=``, ``secret=``,
  ``password=``, ``signature=`` values (tenant API tokens are never known
  to the gateway in clear, only their hashes, so only their shape can
  catch them).
- A request the HTTP server refused before it reached a handler (bad
  framing, a line or header over its limit) is logged as its refusal only
  (``request_refused`` with the error's class and status): aiohttp's own
  line carries the raw request, tokens and message text included.
- Other libraries' lines (aiohttp's, asyncio's, pykka's; not ours, which
  log once per event) repeat at most :data:`REPEATS_PER_WINDOW` times per
  :data:`REPEAT_WINDOW_S` for one logger and message; the next one after a
  quiet window says how many were left out (``suppressed``). A flood of
  ``accept()`` failures once wrote 299,000 lines in a minute.

Keys in :data:`ID_KEYS` carry our own identifiers, which may hold long digit
runs legitimately (Meta's business ``phone_number_id``, actor paths such as
``outbound/limiters/106540352242922``, timestamps); their values skip the
phone scrub (never the secret scrub). The event name is not one of them: it
is kept, but scrubbed like any other text. Log a URL path under ``url``, not
``path``: ``path`` means an actor path. A customer is logged as
:func:`conversation_ref`, never by number.

What redaction cannot recognise is free text under a neutral key or inside
an exception message; the rule is to pass message content only under the
content keys above, and ids otherwise.
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
import secrets as random_secrets
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

import structlog
from aiohttp.http_exceptions import HttpProcessingError
from structlog.typing import EventDict, Processor, WrappedLogger

from lawhub_actors.settings import Secrets

REDACTED = "[redacted]"
PHONE = "[phone]"

SENSITIVE_KEYS = frozenset(
    {
        "body",
        "text",
        "caption",
        "message",
        "params",
        "content",
        "payload",
        "raw",
        "phone",
        "display",
        "wa_id",
        "to",
        "from",
        "recipient",
        "user_id",
        "profile",
        "profile_name",
        "msisdn",
        "token",
        "secret",
        "password",
        "authorization",
        "cookie",
        "set_cookie",
        "api_token",
        "access_token",
        "app_secret",
        "master_key",
        "api_key",
    }
)
SENSITIVE_PARTS = ("token", "secret", "password", "phone", "wa_id", "body", "caption", "signature")
ID_KEYS = frozenset(
    {
        "level",
        "logger",
        "timestamp",
        "tenant",
        "tenant_id",
        "msg_id",
        "message_id",
        "wamid",
        "conversation",
        "phone_number_id",
        "path",
        "actor",
        "supervisor",
        "seq",
        "since",
        "ref",
        "media_ref",
        "dlq_id",
    }
)

# 8+ digits; an optional leading "+" or "("; up to two of space, dash or
# parenthesis between digits: "+62 811 1000 001", "0811-1000-001",
# "(0811) 1000 001", "+1 (415) 555-0100", "6281110000001".
PHONE_PATTERN = re.compile(r"\+?\(?\d(?:[ \-()]{0,2}\d){7,}")

# Shorter values are redacted as whole words only: anywhere, they would turn
# common words into "[redacted]" all over the logs.
MIN_SECRET_LENGTH = 6

CREDENTIAL_PATTERN = re.compile(
    r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"
    r"|(\bauthorization[\"']?\s*[:=]\s*[\"']?)[^\s\"',]+(?:\s+[^\s\"',]+)?"
    r"|((?<![A-Za-z0-9])(?:[a-z_.]*_)?(?:token|secret|password|signature)"
    r"(?:[\"']?\s*[:=]\s*[\"']?|%3D))[^&;\s'\"\\,}]+"
)
"""A credential in free text: a bearer token, an ``Authorization`` header's
value (any scheme), or the value of a parameter or key named like a
credential (``token=``, ``hub.verify_token=``, ``client_secret=``,
``'access_token': '...'``, ``"password":"..."``, ``token%3D...``)."""

REPEAT_WINDOW_S = 10.0
REPEATS_PER_WINDOW = 5

_secrets_lock = threading.Lock()
_secret_values: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None
_pseudonym_key = random_secrets.token_bytes(32)
_stdlib_handler: logging.Handler | None = None


def register_secret(value: str | bytes) -> None:
    """Make ``value`` (text, or bytes as base64 in both alphabets) unloggable."""
    if isinstance(value, bytes):
        texts = [base64.b64encode(value).decode(), base64.urlsafe_b64encode(value).decode()]
    else:
        texts = [value]
    global _secret_pattern  # noqa: PLW0603 - one process-wide set, swapped atomically
    with _secrets_lock:
        _secret_values.update(text for text in texts if text)
        if _secret_values:
            # Longest first, so a secret containing another is removed whole.
            ordered = sorted(_secret_values, key=len, reverse=True)
            _secret_pattern = re.compile("|".join(_secret_regex(text) for text in ordered))


def _secret_regex(text: str) -> str:
    """``text`` anywhere, or as a whole word when it is short."""
    if len(text) >= MIN_SECRET_LENGTH:
        return re.escape(text)
    return rf"(?<![A-Za-z0-9_]){re.escape(text)}(?![A-Za-z0-9_])"


def set_pseudonym_key(master_key: bytes) -> None:
    """Key :func:`conversation_ref` from the master key, so refs stay the same
    across restarts. Until called, a random per-process key is used: refs are
    then stable only within the process, but still not reversible."""
    global _pseudonym_key  # noqa: PLW0603 - process-wide, set once at startup
    _pseudonym_key = hmac.digest(master_key, b"lawhub-actors/log-pseudonym", "sha256")


def conversation_ref(tenant: str, wa_id: str) -> str:
    """A short stable pseudonym of a customer of ``tenant``, for logs.

    A keyed hash: without the key, the number cannot be recovered by hashing
    every possible phone number. The tenant is part of the input, so one
    person's refs at two firms cannot be linked. Base32 (letters and 2-7)
    makes a phone-like digit run in a ref all but impossible, so it survives
    the phone scrub in free text too.
    """
    digest = hmac.digest(_pseudonym_key, f"{tenant}\x00{wa_id}".encode(), "sha256")
    return "c-" + base64.b32encode(digest[:10]).decode().lower()


def scrub(text: str, *, phones: bool = True) -> str:
    """``text`` with registered secrets and (unless ``phones=False``) phone-like
    digit runs masked."""
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    text = CREDENTIAL_PATTERN.sub(_credential, text)
    if phones:
        text = PHONE_PATTERN.sub(PHONE, text)
    return text


def _credential(match: re.Match[str]) -> str:
    return f"{match.group(1) or match.group(2) or match.group(3)}{REDACTED}"


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor applying the rules of this module to every value."""
    return {key: _redact_item(key, value) for key, value in event_dict.items()}


def _is_sensitive(key: str) -> bool:
    name = key.lower().replace("-", "_")
    if name in ID_KEYS:
        return False
    return name in SENSITIVE_KEYS or any(part in name for part in SENSITIVE_PARTS)


def _redact_item(key: object, value: Any) -> Any:
    name = str(key)
    if _is_sensitive(name):
        return REDACTED
    return _redact_value(value, phones=name.lower() not in ID_KEYS)


def _redact_value(value: Any, *, phones: bool) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return scrub(value, phones=phones)
    if isinstance(value, Mapping):
        return {str(key): _redact_item(key, item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(item, phones=phones) for item in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return f"[{len(value)} bytes]"
    return scrub(repr(value), phones=phones)


def configure(
    level: str = "info",
    stream: TextIO | None = None,
    secrets: Secrets | Iterable[str] | None = None,
) -> None:
    """JSON lines on ``stream`` (default stderr) at ``level`` and above, for
    structlog and the standard library alike. ``secrets`` are registered for
    redaction; with a :class:`~lawhub_actors.settings.Secrets` carrying a
    master key, conversation refs are keyed from it. Calling again (e.g. on a
    config reload) replaces the previous setup."""
    level_no = logging.getLevelNamesMapping().get(level.upper())
    if level_no is None:
        raise ValueError(f"unknown log level {level!r}")
    out = sys.stderr if stream is None else stream
    _register(secrets)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    tail: list[Processor] = [
        structlog.processors.format_exc_info,
        redact,
        structlog.processors.JSONRenderer(),
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.StackInfoRenderer(),
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        # Not cached: a reconfigure (new level, new stream) reaches loggers
        # that modules obtained earlier.
        cache_logger_on_first_use=False,
    )
    _route_stdlib(out, level_no, timestamper, tail)


def _register(secrets: Secrets | Iterable[str] | None) -> None:
    if secrets is None:
        return
    if isinstance(secrets, Secrets):
        for value in secrets.values():
            register_secret(value)
        if secrets.master_key is not None:
            set_pseudonym_key(secrets.master_key.get_secret_value())
        return
    for value in secrets:
        register_secret(value)


def _route_stdlib(
    out: TextIO, level_no: int, timestamper: Processor, tail: list[Processor]
) -> None:
    global _stdlib_handler  # noqa: PLW0603 - replaced on each configure
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                # stdlib callers (the supervisors) pass ids as ``extra``; keep
                # them, so that redaction sees and filters them like any key.
                structlog.stdlib.ExtraAdder(),
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                timestamper,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    handler.addFilter(refusals_only)
    handler.addFilter(RepeatLimiter())
    root = logging.getLogger()
    if _stdlib_handler is not None:
        root.removeHandler(_stdlib_handler)
    root.addHandler(handler)
    root.setLevel(level_no)
    # httpx logs every request at INFO: one line per outbound send and media
    # download, with URLs; the gateway logs its own outcomes instead.
    logging.getLogger("httpx").setLevel(max(level_no, logging.WARNING))
    _stdlib_handler = handler


def refusals_only(record: logging.LogRecord) -> bool:
    """A request the HTTP server refused before any handler ran is logged as
    its refusal, never as the raw request that aiohttp's message and
    exception quote (a ``logging`` filter: it rewrites, never drops)."""
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, HttpProcessingError):
        record.msg, record.args = "request_refused", ()
        record.exc_info, record.exc_text = None, None
        record.refusal = type(error).__name__
        record.status = error.code
    return True


OWN_LOGGERS = ("lawhub", "supervisors")
"""Prefixes of our own loggers' names: they log once per event (a crash, a
restart), and counting those lines must stay exact."""


class RepeatLimiter(logging.Filter):
    """At most ``per_window`` records per logger and message template every
    ``window_s`` (our own loggers' excepted); the first one let through after
    some were left out carries ``suppressed``, their count."""

    def __init__(self, per_window: int = REPEATS_PER_WINDOW,
                 window_s: float = REPEAT_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._per_window = per_window
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], list[float | int]] = {}
        """(logger, template) -> [window start, records let through, left out]."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(OWN_LOGGERS):
            return True
        key = (record.name, _shape(record.msg))
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window[0] >= self._window_s:
                left_out = int(window[2]) if window is not None else 0
                if len(self._windows) > MAX_SHAPES:
                    self._forget(now)
                self._windows[key] = [now, 1, 0]
                if left_out:
                    record.suppressed = left_out
                return True
            if window[1] < self._per_window:
                window[1] += 1
                return True
            window[2] += 1
            return False

    def _forget(self, now: float) -> None:
        """Drop the windows that have ended (their counts are lost: the lines
        they left out are not reported), all of them if none has."""
        ended = [key for key, window in self._windows.items() if now - window[0] >= self._window_s]
        for key in ended or list(self._windows):
            del self._windows[key]


MAX_SHAPES = 1000
_VARYING = re.compile(r"0x[0-9a-fA-F]+|\d+")


def _shape(message: object) -> str:
    """A message's first line with its numbers and addresses blanked: asyncio
    writes each connection's repr (fd, addresses) into the same complaint."""
    first = str(message).split("\n", 1)[0]
    return _VARYING.sub("#", first)[:200]
