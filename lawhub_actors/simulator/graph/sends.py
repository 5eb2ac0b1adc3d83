"""The messages endpoint, ``POST /{version}/{phone_number_id}/messages``: every request
kept as a :class:`~lawhub_actors.simulator.graph.validation.SendRecord`, run through Meta's
checks and limits, and answered as Meta does or as a test scripted (refused, accepted but
answered an error, never answered, or later failed in its statuses).

The order of the checks is :meth:`Sends.handle`'s.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from lawhub_actors.simulator import traffic
from lawhub_actors.simulator.graph import shutdown
from lawhub_actors.simulator.graph.errors import Refused, default_code
from lawhub_actors.simulator.graph.limits import Limits
from lawhub_actors.simulator.graph.validation import Business, SendRecord, read_send
from lawhub_actors.simulator.graph.webhooks import StatusFailure, StatusWebhooks

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


class Sends:
    """Every send so far (``records``), what is scripted for the next ones, and the answer
    each gets after ``latency_s``. ``clock`` times their arrival; the checks are
    ``business``'s and ``limits``', the statuses ``webhooks``'.
    :class:`~lawhub_actors.simulator.graph.GraphStandIn` documents the setters."""

    def __init__(
        self,
        clock: Callable[[], float],
        business: Business,
        limits: Limits,
        webhooks: StatusWebhooks,
    ) -> None:
        self.records: list[SendRecord] = []
        self.latency_s = 0.0
        self._clock = clock
        self._business = business
        self._limits = limits
        self._webhooks = webhooks
        self._script: deque[_Scripted] = deque()
        self._status_failures: deque[StatusFailure] = deque()

    # -- scripted failures -------------------------------------------------------------------

    def fail_sends_next(self, count: int, status: int, code: int | None) -> None:
        error_code = code if code is not None else default_code(status)
        self._script.extend([_Scripted("fail", status, error_code)] * _count(count))

    def timeout_sends_next(self, count: int, *, sent: bool) -> None:
        mode: _Mode = "timeout_after_send" if sent else "timeout"
        self._script.extend([_Scripted(mode)] * _count(count))

    def accept_then_fail_next(self, count: int, status: int, code: int | None) -> None:
        error_code = code if code is not None else default_code(status)
        self._script.extend([_Scripted("accept_then_fail", status, error_code)] * _count(count))

    def fail_status_for_next(self, count: int, code: int, *, after_sent: bool) -> None:
        self._status_failures.extend([(code, after_sent)] * _count(count))

    # -- serving -----------------------------------------------------------------------------

    async def record(self, request: web.Request) -> SendRecord:
        """Keep the send ``request``, unanswered yet, in ``records``."""
        record = await read_send(request, self._clock())
        self.records.append(record)
        return record

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``POST /{version}/{phone_number_id}/messages``.

        In order: the phone number id (registered ones only, once any is), the request
        (code 100), registered templates (1320xx), a scripted failure or timeout (no quota
        used), the throughput limit (130429), the pair rate (131056); then the message
        is taken (quota used, status webhooks scheduled) and answered 200, or as scripted
        by ``accept_then_fail_next`` / ``timeout_sends_next(sent=True)``. The answer
        waits ``latency_s`` (the statuses do not: one can beat the answer, as with Meta).
        """
        record = await self.record(request)
        response: web.Response | None
        try:
            response = self._take(request.app, record)
        except Refused as refused:
            record.status, record.code = refused.response.status, refused.code
            response = refused.response
        if await shutdown.pause(request.app, self.latency_s):
            response = None  # shutting down
        if response is None:  # a timeout: say nothing until the server goes away
            await shutdown.until_shutdown(request.app)
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError
        return response

    def _take(self, app: web.Application, record: SendRecord) -> web.Response | None:
        """The answer to a send (None: never answer), after every check and side effect."""
        number, template = self._business.check(record)
        if self._script and self._script[0].before_limits:
            scripted = self._script.popleft()
            if scripted.mode == "timeout":
                return None
            raise Refused.whatsapp(scripted.status, scripted.code)
        self._limits.check(record)
        # Meta takes the message
        self._limits.use(record)
        record.wamid = traffic.wamid()
        failure = self._status_failures.popleft() if self._status_failures else None
        self._webhooks.schedule(app, record, number, self._business.category(template), failure)
        scripted_after = None
        if self._script and not self._script[0].before_limits:
            scripted_after = self._script.popleft()
        if scripted_after is not None and scripted_after.mode == "timeout_after_send":
            return None
        if scripted_after is not None:
            raise Refused.whatsapp(scripted_after.status, scripted_after.code)
        record.status = 200
        message: dict[str, str] = {"id": record.wamid}
        if record.type == "template":
            message["message_status"] = "accepted"
        return web.json_response({
            "messaging_product": "whatsapp",
            "contacts": [{"input": record.to, "wa_id": record.wa_id}],
            "messages": [message],
        })


def _count(count: int) -> int:
    if count < 0:
        raise ValueError("count must not be negative")
    return count
