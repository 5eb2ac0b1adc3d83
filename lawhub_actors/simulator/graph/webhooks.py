"""Status webhooks: after each accepted send, its statuses POSTed to the gateway like Meta
does (signed, one at a time in order, retried on a non-200), each attempt kept as a
:class:`StatusPost`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from lawhub_actors.simulator import traffic
from lawhub_actors.simulator.graph.errors import error_text
from lawhub_actors.simulator.graph.validation import PhoneNumber, SendRecord

STATUS_KINDS = ("sent", "delivered", "read", "played")
_WEBHOOK_TIMEOUT_S = 10.0

# a message scripted to end ``failed``: Meta's error code, and whether ``sent`` comes first
StatusFailure = tuple[int, bool]


@dataclass(frozen=True, slots=True)
class StatusPost:
    """One attempt to POST a status webhook to the gateway."""

    wamid: str
    status: str  # sent / delivered / read / played / failed
    attempt: int  # 1 for the first try
    answer: int | None  # the gateway's HTTP status; None: transport error or timeout
    at: float  # by the stand-in's ``clock``
    callback: str | None


@dataclass(frozen=True, slots=True)
class _StatusTarget:
    url: str
    app_secret: bytes
    delay_s: float
    statuses: tuple[str, ...]
    attempts: int
    retry_delay_s: float


@dataclass(frozen=True, slots=True)
class _StatusJob:
    """The status webhooks one accepted message gets: ``plan`` is (status, error or None)."""

    target: _StatusTarget
    record: SendRecord
    number: PhoneNumber
    pricing: dict[str, Any]
    plan: list[tuple[str, dict[str, Any] | None]]


@dataclass(slots=True)
class _Delivery:
    """Per served app: the client session status webhooks go out on, and their tasks."""

    session: aiohttp.ClientSession | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


_DELIVERY = web.AppKey("status_delivery", _Delivery)


class StatusWebhooks:
    """Where status webhooks go (nowhere until :meth:`deliver_statuses_to`) and every
    attempt so far (``posts``); ``clock`` gives their timestamps.
    :class:`~lawhub_actors.simulator.graph.GraphStandIn` documents the setters."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.posts: list[StatusPost] = []
        self._clock = clock
        self._target: _StatusTarget | None = None

    def deliver_statuses_to(
        self,
        url: str,
        app_secret: bytes,
        *,
        delay_s: float,
        statuses: Iterable[str],
        attempts: int,
        retry_delay_s: float,
    ) -> None:
        kinds = tuple(statuses)
        unknown = [kind for kind in kinds if kind not in STATUS_KINDS]
        if unknown:
            raise ValueError(f"unknown statuses {unknown}; known: {STATUS_KINDS}")
        if delay_s < 0 or retry_delay_s < 0:
            raise ValueError("delays must not be negative")
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._target = _StatusTarget(
            url, bytes(app_secret), delay_s, kinds, attempts, retry_delay_s
        )

    def stop_statuses(self) -> None:
        self._target = None

    @staticmethod
    def install(app: web.Application) -> None:
        """Give ``app`` the session and tasks its webhooks go out on, ended at cleanup."""
        app[_DELIVERY] = _Delivery()
        app.on_cleanup.append(_stop_delivery)

    def schedule(
        self,
        app: web.Application,
        record: SendRecord,
        number: PhoneNumber,
        category: str | None,
        failure: StatusFailure | None,
    ) -> None:
        """Start POSTing the statuses of ``record``, which Meta took, on ``app``'s loop:
        priced as ``category`` (None: a free service message), ending ``failed`` when
        ``failure`` says so."""
        target = self._target
        if target is None:
            return
        plan: list[tuple[str, dict[str, Any] | None]]
        if failure is None:
            plan = [(kind, None) for kind in target.statuses]
        else:
            code, after_sent = failure
            title, details = error_text(code)
            error = traffic.status_error(code, title, details)
            plan = [("sent", None)] if after_sent and "sent" in target.statuses else []
            plan.append(("failed", error))
        delivery = app[_DELIVERY]
        job = _StatusJob(target, record, number, _pricing(category), plan)
        task = asyncio.get_running_loop().create_task(self._post(delivery, job))
        delivery.tasks.add(task)
        task.add_done_callback(delivery.tasks.discard)

    async def _post(self, delivery: _Delivery, job: _StatusJob) -> None:
        target, record, number = job.target, job.record, job.number
        assert record.wamid is not None and record.wa_id is not None
        if delivery.session is None:
            delivery.session = aiohttp.ClientSession(
                # no pool bound: Meta does not queue one business's webhooks behind
                # a hundred others (aiohttp's default), which made them seconds late
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=_WEBHOOK_TIMEOUT_S),
            )
        session = delivery.session
        for kind, error in job.plan:
            await asyncio.sleep(target.delay_s)
            change = traffic.outbound_status(
                record.phone_number_id, record.wa_id, record.wamid, kind,
                timestamp=int(self._clock()), callback=record.callback,
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
                self.posts.append(
                    StatusPost(record.wamid, kind, attempt, answer, self._clock(), record.callback)
                )
                if answer == 200:
                    break
                if attempt < target.attempts:
                    await asyncio.sleep(target.retry_delay_s * 2 ** (attempt - 1))


def _pricing(category: str | None) -> dict[str, Any]:
    if category is None:
        return traffic.status_pricing("service", billable=False, kind="free_customer_service")
    return traffic.status_pricing(category)


async def _stop_delivery(app: web.Application) -> None:
    delivery = app[_DELIVERY]
    tasks = list(delivery.tasks)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if delivery.session is not None:
        await delivery.session.close()
        delivery.session = None

