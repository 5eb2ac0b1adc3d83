"""Meta's sending limits, by the arrival time of each send.

The throughput limit per business phone number counts accepted messages over any sliding
1-second window; the pair rate per (phone number, recipient) is a GCRA of one message per
``pair_interval_s`` with bursts of ``pair_burst``. ``None`` switches either off.
"""

from __future__ import annotations

from collections import deque

from lawhub_actors.simulator.graph.errors import Refused
from lawhub_actors.simulator.graph.validation import SendRecord

DEFAULT_THROUGHPUT_MPS = 80
DEFAULT_PAIR_INTERVAL_S = 6.0
DEFAULT_PAIR_BURST = 45


class Limits:
    """The quota each send uses: refused over it (130429 throughput, 131056 pair rate).

    ``throughput_mps`` applies to numbers without :meth:`set_throughput`;
    :class:`~lawhub_actors.simulator.graph.GraphStandIn` documents the setters.
    """

    def __init__(
        self, throughput_mps: int | None, pair_interval_s: float | None, pair_burst: int
    ) -> None:
        _check_throughput(throughput_mps)
        _check_pair_rate(pair_interval_s, pair_burst)
        self.throughput_mps = throughput_mps
        self.pair_interval_s = pair_interval_s
        self.pair_burst = pair_burst
        self._throughputs: dict[str, int | None] = {}
        self._windows: dict[str, deque[float]] = {}
        self._pair_tat: dict[tuple[str, str], float] = {}

    def set_throughput(self, phone_number_id: str, mps: int | None) -> None:
        _check_throughput(mps)
        self._throughputs[phone_number_id] = mps

    def throughput_of(self, phone_number_id: str) -> int | None:
        return self._throughputs.get(phone_number_id, self.throughput_mps)

    def set_pair_rate(self, interval_s: float | None, burst: int) -> None:
        _check_pair_rate(interval_s, burst)
        self.pair_interval_s = interval_s
        self.pair_burst = burst
        self._pair_tat.clear()

    def check(self, record: SendRecord) -> None:
        """Raise :class:`Refused` when ``record`` is over either limit (no quota used)."""
        at = record.at
        limit = self.throughput_of(record.phone_number_id)
        window = self._windows.get(record.phone_number_id)
        if window is not None:
            while window and window[0] <= at - 1.0:
                window.popleft()
        if limit is not None and window is not None and len(window) >= limit:
            raise Refused.whatsapp(400, 130429)
        interval = self.pair_interval_s
        if interval is not None and record.wa_id is not None:
            tat = self._pair_tat.get((record.phone_number_id, record.wa_id), at)
            if max(tat, at) - at > (self.pair_burst - 1) * interval + 1e-9:
                raise Refused.whatsapp(400, 131056)

    def use(self, record: SendRecord) -> None:
        """Count ``record``, which Meta took, against both limits."""
        self._windows.setdefault(record.phone_number_id, deque()).append(record.at)
        if self.pair_interval_s is not None and record.wa_id is not None:
            key = (record.phone_number_id, record.wa_id)
            self._pair_tat[key] = max(self._pair_tat.get(key, record.at), record.at) + (
                self.pair_interval_s
            )


def _check_throughput(mps: int | None) -> None:
    if mps is not None and mps < 1:
        raise ValueError("throughput must be at least 1 message per second (or None)")


def _check_pair_rate(interval_s: float | None, burst: int) -> None:
    if interval_s is not None and interval_s <= 0:
        raise ValueError("pair interval must be positive (or None)")
    if burst < 1:
        raise ValueError("pair burst must be at least 1")
