"""Filters on the standard library's records, before they are rendered.

- A request the HTTP server refused before it reached a handler (bad
  framing, a line or header over its limit) is logged as its refusal only
  (``request_refused`` with the error's class and status): aiohttp's own
  line carries the raw request, tokens and message text included
  (:func:`refusals_only`).
- Other libraries' lines (aiohttp's, asyncio's, pykka's; not ours, which
  log once per event) repeat at most :data:`REPEATS_PER_WINDOW` times per
  :data:`REPEAT_WINDOW_S` for one logger and message; the next one after a
  quiet window says how many were left out (``suppressed``). A flood of
  ``accept()`` failures once wrote 299,000 lines in a minute
  (:class:`RepeatLimiter`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError

REPEAT_WINDOW_S = 10.0
REPEATS_PER_WINDOW = 5


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
