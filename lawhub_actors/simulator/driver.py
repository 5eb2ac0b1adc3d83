"""Plays a :class:`~lawhub_actors.simulator.scenario.Scenario` against a running gateway.

One message per tick, ``rate`` ticks a second: a client's message goes in as
Meta would send it (the file put on the Graph stand-in first, the webhook
signed with the app secret), or a lawyer answers a client through
``POST /api/v1/messages`` with the firm's token, a few seconds after the
client wrote (inside the 24-hour window). Status webhooks come back from the
stand-in by themselves (:meth:`GraphStandIn.deliver_statuses_to`).

Now and then Meta misbehaves, through the stand-in's failure injection: a
send ends ``failed`` with 131026 (undeliverable), a send is answered 500,
a media download is answered 500 once. Each injection is logged.

A step that goes wrong (a request that fails, an answer it cannot read, a
bug) is logged and counted in :attr:`TrafficDriver.failed_steps`; the
traffic goes on with the next tick, whatever happened.

State stays bounded for a demo left running all day: one pending answer per
client at most; the stand-in forgets files and the download URLs it handed
out after :data:`MEDIA_TTL_S` (as Meta's expire; the gateway downloads within
seconds, and re-resolves a URL that expired under it), and keeps only its
last :data:`KEEP_RECORDS` request records.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from typing import Any

import aiohttp
import structlog

from lawhub_actors.simulator import traffic
from lawhub_actors.simulator.graph import GraphStandIn
from lawhub_actors.simulator.scenario import Customer, Inbound, Scenario

__all__ = ["TrafficDriver"]

log = structlog.get_logger("lawhub.demo")

ANSWER_SHARE = 0.7  # of client messages a lawyer answers
ANSWER_DELAY_S = (1.5, 4.0)  # after the client wrote
UNDELIVERABLE_SHARE = 0.06  # of answers: Meta takes it, then reports failed (131026)
SEND_5XX_SHARE = 0.04  # of answers: Meta answers 500 (the gateway settles, then resends)
DOWNLOAD_5XX_SHARE = 0.05  # of files: the first resolve is answered 500 (retried)
MEDIA_TTL_S = 300.0
KEEP_RECORDS = 1000
REQUEST_TIMEOUT_S = 10.0


class TrafficDriver:
    """Clients and lawyers of ``scenario`` talking through the gateway at ``gateway_url``."""

    def __init__(
        self,
        scenario: Scenario,
        stand_in: GraphStandIn,
        gateway_url: str,
        app_secret: bytes,
        *,
        rate: float,
        rng: random.Random,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._scenario = scenario
        self._meta = stand_in
        self._url = gateway_url.rstrip("/")
        self._secret = app_secret
        self._interval = 1.0 / rate
        self._rng = rng
        self._answers: dict[str, tuple[float, Customer]] = {}  # wa_id -> (due, client)
        self._media: deque[tuple[float, str]] = deque()  # (added at, media id)
        self._urls_expired_at = time.monotonic()
        self.failed_steps = 0
        """Ticks that went wrong (each logged) since the start."""

    async def run(self) -> None:
        """Tick until cancelled. A step that fails is logged, counted and
        skipped: the gateway may be starting, stopping or restarting an actor,
        as in real life; nothing but cancelling ends the traffic."""
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await self.step(session)
                await asyncio.sleep(self._interval)  # the pace, not a synchronisation

    async def step(self, session: aiohttp.ClientSession) -> bool:
        """One tick; ``False`` (logged and counted) if it went wrong. Never raises
        but to be cancelled."""
        ok = False
        try:
            await self._tick(session)
            ok = True
        except (aiohttp.ClientError, TimeoutError, UnreadableAnswer) as error:
            log.info("demo_request_failed", error=type(error).__name__, detail=str(error))
        except Exception:  # one bad step must never end the demo's traffic
            log.warning("demo_step_failed", exc_info=True)
        try:
            self._forget(time.monotonic())
        except Exception:  # as above
            ok = False
            log.warning("demo_forget_failed", exc_info=True)
        if not ok:
            self.failed_steps += 1
        return ok

    async def _tick(self, session: aiohttp.ClientSession) -> None:
        now = time.monotonic()
        due = min(self._answers.values(), default=None, key=lambda answer: answer[0])
        if due is not None and due[0] <= now:
            customer = due[1]
            del self._answers[customer.wa_id]
            await self._answer(session, customer)
            return
        inbound = self._scenario.next_inbound()
        await self._write_in(session, inbound)
        wa_id = inbound.customer.wa_id
        if wa_id not in self._answers and self._rng.random() < ANSWER_SHARE:
            self._answers[wa_id] = (now + self._rng.uniform(*ANSWER_DELAY_S), inbound.customer)

    async def _write_in(self, session: aiohttp.ClientSession, inbound: Inbound) -> None:
        customer = inbound.customer
        stamp = int(time.time())
        if inbound.kind == "text":
            change = traffic.text_message(customer.number, customer.wa_id, inbound.text,
                                          timestamp=stamp, name=customer.name)
        else:
            change = traffic.media_message(customer.number, customer.wa_id, inbound.kind,
                                           self._put_media(inbound), timestamp=stamp,
                                           name=customer.name)
        post = traffic.signed(traffic.envelope(change), self._secret)
        async with session.post(f"{self._url}/webhook", data=post.body,
                                headers=post.headers) as response:
            if response.status != 200:
                log.warning("demo_webhook_refused", status=response.status)

    def _put_media(self, inbound: Inbound) -> dict[str, Any]:
        """The file on Meta's side; the media object its webhook carries."""
        media_id = self._meta.add_media(inbound.data, inbound.mime_type)
        self._media.append((time.monotonic(), media_id))
        if self._rng.random() < DOWNLOAD_5XX_SHARE:
            self._meta.fail_next(1, status=500)
            log.info("demo_meta_error_injected", where="media", status=500)
        fields: dict[str, Any] = {}
        if inbound.text:
            fields["caption"] = inbound.text
        if inbound.filename is not None:
            fields["filename"] = inbound.filename
        return traffic.media_object(media_id, inbound.data, inbound.mime_type, **fields)

    async def _answer(self, session: aiohttp.ClientSession, customer: Customer) -> None:
        draw = self._rng.random()
        if draw < UNDELIVERABLE_SHARE:
            self._meta.fail_status_for_next(1, 131026)
            log.info("demo_meta_error_injected", where="status", code=131026)
        elif draw < UNDELIVERABLE_SHARE + SEND_5XX_SHARE:
            self._meta.fail_sends_next(1, status=500)
            log.info("demo_meta_error_injected", where="send", status=500)
        headers = {"Authorization": f"Bearer {customer.firm.token}"}
        async with session.post(f"{self._url}/api/v1/messages", headers=headers,
                                json=self._scenario.reply(customer)) as response:
            if response.status != 202:
                code = _error_code(await response.read(), response.status)
                log.info("demo_answer_refused", tenant=customer.firm.tenant,
                         status=response.status, code=code)

    def _forget(self, now: float) -> None:
        while self._media and self._media[0][0] < now - MEDIA_TTL_S:
            self._meta.remove_media(self._media.popleft()[1])
        if now - self._urls_expired_at > MEDIA_TTL_S:
            self._meta.expire_urls()
            self._urls_expired_at = now
        for records in (self._meta.sends, self._meta.status_posts):
            if len(records) > 2 * KEEP_RECORDS:
                del records[:-KEEP_RECORDS]


class UnreadableAnswer(ValueError):
    """The gateway answered with something that is not its JSON error document
    (a proxy's HTML page, a truncated body...)."""


def _error_code(body: bytes, status: int) -> str | None:
    """``error.code`` of the gateway's JSON error document."""
    try:
        answer = json.loads(body)
    except ValueError as unreadable:
        raise UnreadableAnswer(f"status {status}: not JSON ({len(body)} bytes)") from unreadable
    document = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(document, dict):
        raise UnreadableAnswer(f"status {status}: no error document")
    code = document.get("code")
    return code if isinstance(code, str) else None
