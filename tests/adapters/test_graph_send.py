"""GraphSend against the Graph API stand-in on a real local port (served from its own thread)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lawhub_actors.adapters.graph_send import GraphSend, SendFailed, Sent
from lawhub_actors.core.signature import verify
from lawhub_actors.simulator.graph import GraphStandIn, serve_in_thread
from tests.clock import Clock

TOKEN = "graph-token-for-tests-0123456789"
NUMBER = "106540352242922"
CUSTOMER = "6281234500001"
APP_SECRET = b"app-secret-for-status-webhooks"


class Meta:
    def __init__(self, stand_in: GraphStandIn, base_url: str) -> None:
        self.stand_in = stand_in
        self.base_url = base_url
        self._clients: list[GraphSend] = []

    def sender(self, token: str = TOKEN, **options: Any) -> GraphSend:
        client = GraphSend(self.base_url, token, **options)
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.close()


async def run_meta(stand_in: GraphStandIn) -> AsyncIterator[Meta]:
    with serve_in_thread(stand_in) as base_url:
        meta = Meta(stand_in, base_url)
        try:
            yield meta
        finally:
            await meta.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def meta(clock: Clock) -> AsyncIterator[Meta]:
    """The stand-in on a frozen clock: limits are exact whatever the machine's speed."""
    async for meta in run_meta(GraphStandIn(TOKEN, clock=clock)):
        yield meta


@pytest.fixture
async def live_meta() -> AsyncIterator[Meta]:
    """The stand-in on the real clock."""
    async for meta in run_meta(GraphStandIn(TOKEN)):
        yield meta


def customers(count: int) -> list[str]:
    return [f"62812345{n:05d}" for n in range(count)]


class Receiver:
    """A tiny gateway webhook endpoint in its own thread and loop; keeps every POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.posts.append((await request.read(), dict(request.headers)))
        return web.Response(text="ok")

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_post("/webhook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{self._runner.addresses[0][1]}/webhook"

    def __enter__(self) -> Receiver:
        self._thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count:
            assert time.monotonic() < deadline, f"{len(self.posts)} of {count} webhooks came"
            time.sleep(0.01)
        return [
            status
            for body, _ in self.posts
            for entry in json.loads(body)["entry"]
            for change in entry["changes"]
            for status in change["value"]["statuses"]
        ]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def replying(response: Callable[[], web.StreamResponse]) -> Handler:
    """A handler that answers every request with a fresh ``response()``."""
    async def handler(request: web.Request) -> web.StreamResponse:
        return response()

    return handler


@pytest.fixture
async def answering(aiohttp_server) -> Callable[[Handler], Awaitable[GraphSend]]:
    """A GraphSend whose HTTP answers come from ``handler(request)`` (answers
    the stand-in does not give), served on a local port."""
    senders: list[GraphSend] = []

    async def sender(handler: Handler) -> GraphSend:
        app = web.Application()
        app.router.add_post("/v21.0/{number}/messages", handler)
        server = await aiohttp_server(app)
        senders.append(GraphSend(str(server.make_url("/v21.0")), TOKEN))
        return senders[-1]

    yield sender
    for sender_ in senders:
        await sender_.close()


def assert_failed_unanswered(result: Sent | SendFailed, title: str, message: str) -> None:
    """A send that failed before Meta answered: no status or code, and its repr shows
    neither the token nor the text sent (the callers' texts say "rahasia")."""
    assert isinstance(result, SendFailed)
    assert (result.status, result.code, result.title) == (None, None, title)
    assert result.message == message
    assert TOKEN not in repr(result) and "rahasia" not in repr(result)


# -- requests and answers ----------------------------------------------------------------------


async def test_text_sends_metas_request_shape_and_returns_the_wamid(meta) -> None:
    result = await meta.sender().text(NUMBER, "+" + CUSTOMER, "Selamat pagi", callback="msg-1")
    assert isinstance(result, Sent)
    assert result.wamid.startswith("wamid.")
    assert result.wa_id == CUSTOMER
    [record] = meta.stand_in.sends
    assert record.request == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+" + CUSTOMER,
        "type": "text", "text": {"body": "Selamat pagi"}, "biz_opaque_callback_data": "msg-1",
    }
    assert record.wamid == result.wamid


async def test_to_without_plus_leaves_with_a_plus_so_meta_prepends_nothing(meta) -> None:
    result = await meta.sender().text(NUMBER, CUSTOMER, "Halo", callback="msg-1")
    assert result == Sent(wamid=result.wamid, wa_id=CUSTOMER)
    assert meta.stand_in.sends[0].to == "+" + CUSTOMER


async def test_template_sends_positional_body_parameters(meta) -> None:
    meta.stand_in.add_template("hearing_reminder", "id", params=2)
    result = await meta.sender().template(
        NUMBER, CUSTOMER, "hearing_reminder", "id", ["Budi", "Senin 10:00"], callback="msg-2"
    )
    assert isinstance(result, Sent)
    [record] = meta.stand_in.sends
    assert record.request["type"] == "template"
    assert record.request["template"] == {
        "name": "hearing_reminder", "language": {"code": "id"},
        "components": [{"type": "body", "parameters": [
            {"type": "text", "text": "Budi"}, {"type": "text", "text": "Senin 10:00"},
        ]}],
    }
    assert record.callback == "msg-2"


async def test_a_template_without_parameters_has_no_components(meta) -> None:
    assert isinstance(
        await meta.sender().template(NUMBER, CUSTOMER, "welcome", "id", [], callback="c"), Sent
    )
    assert "components" not in meta.stand_in.sends[0].request["template"]


async def test_a_template_refused_by_meta_is_send_failed_with_its_code(meta) -> None:
    meta.stand_in.add_template("hearing_reminder", "id", params=2)
    result = await meta.sender().template(
        NUMBER, CUSTOMER, "hearing_reminder", "id", ["only one"], callback="c"
    )
    assert isinstance(result, SendFailed)
    assert (result.status, result.code) == (400, 132000)
    assert result.message.startswith("(#132000) ")
    assert "params" in result.details


async def test_an_invalid_recipient_or_params_is_a_programming_error(meta) -> None:
    sender = meta.sender()
    for to in ("", "+", "0812-3456", "abc", "+62 812"):
        with pytest.raises(ValueError):
            await sender.text(NUMBER, to, "x", callback="c")
    with pytest.raises(TypeError):
        await sender.template(NUMBER, CUSTOMER, "t", "id", "Budi", callback="c")
    with pytest.raises(ValueError):
        await sender.text("", CUSTOMER, "x", callback="c")
    assert meta.stand_in.sends == []


async def test_a_wrong_token_is_send_failed_190(meta) -> None:
    result = await meta.sender(token="wrong-token").text(NUMBER, CUSTOMER, "x", callback="c")
    assert isinstance(result, SendFailed)
    assert (result.status, result.code, result.title) == (401, 190, "OAuthException")
    assert "access token" in result.message
    assert "wrong-token" not in repr(result)


async def test_an_unknown_phone_number_keeps_the_code_and_ignores_the_subcode(meta) -> None:
    meta.stand_in.add_phone_number(NUMBER)
    result = await meta.sender().text("999", CUSTOMER, "x", callback="c")
    assert isinstance(result, SendFailed)
    assert (result.status, result.code, result.title) == (400, 100, "GraphMethodException")
    assert "Unsupported post request" in result.message


# -- limits ------------------------------------------------------------------------------------


async def test_a_burst_of_100_at_80_mps_gets_80_sent_then_130429(meta) -> None:
    sender = meta.sender()
    results = [await sender.text(NUMBER, to, "x", callback=f"c{n}") for n, to in
               enumerate(customers(100))]
    assert all(isinstance(r, Sent) for r in results[:80])
    refused = results[80:]
    assert all(isinstance(r, SendFailed) for r in refused)
    assert {(r.status, r.code, r.title, r.message) for r in refused} == {
        (400, 130429, "OAuthException", "(#130429) Rate limit hit"),
    }
    assert refused[0].details == "Cloud API message throughput has been reached."


async def test_a_real_time_burst_gets_80_in_the_first_second_and_no_window_over_80(live_meta) -> None:
    sender = live_meta.sender(max_connections=16)
    results = await asyncio.gather(*(sender.text(NUMBER, to, "x", callback="c")
                                     for to in customers(100)))
    sends = live_meta.stand_in.sends
    assert sends[-1].at - sends[0].at < 1.0, "the burst must fit in one second for this test"
    assert sum(isinstance(r, Sent) for r in results) == 80
    assert {r.code for r in results if isinstance(r, SendFailed)} == {130429}
    last_accepted = max(record.at for record in sends if record.sent)
    await asyncio.sleep(max(0.0, last_accepted + 1.0 - time.time()) + 0.01)  # all left the window
    more = [await sender.text(NUMBER, to, "x", callback="c") for to in customers(130)[100:]]
    assert all(isinstance(r, Sent) for r in more)
    accepted = sorted(record.at for record in live_meta.stand_in.sends if record.sent)
    assert max(sum(1 for t in accepted if a <= t < a + 1.0) for a in accepted) <= 80


async def test_the_pair_rate_gives_a_burst_of_45_then_131056(meta) -> None:
    sender = meta.sender()
    results = [await sender.text(NUMBER, CUSTOMER, f"n{n}", callback=f"c{n}") for n in range(47)]
    assert all(isinstance(r, Sent) for r in results[:45])
    for refused in results[45:]:
        assert isinstance(refused, SendFailed)
        assert (refused.status, refused.code) == (400, 131056)
        assert refused.message == (
            "(#131056) (Business Account, Consumer Account) pair rate limit hit"
        )
    assert isinstance(await sender.text(NUMBER, "6281234500002", "x", callback="c"), Sent)


# -- injected failures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "title"),
    [(400, 131047, "OAuthException"), (400, 131050, "OAuthException"),
     (500, 131000, "OAuthException"), (503, 133004, "OAuthException")],
)
async def test_any_injected_code_comes_back_with_status_message_and_details(
    meta, status, code, title
) -> None:
    meta.stand_in.fail_sends_next(1, status, code)
    result = await meta.sender().text(NUMBER, CUSTOMER, "x", callback="c")
    assert isinstance(result, SendFailed)
    assert (result.status, result.code, result.title) == (status, code, title)
    assert result.message.startswith(f"(#{code}) ")
    assert result.details


async def test_accept_then_fail_is_send_failed_5xx_though_meta_sent_it(meta) -> None:
    meta.stand_in.accept_then_fail_next(1, 500)
    result = await meta.sender().text(NUMBER, CUSTOMER, "x", callback="our-id")
    assert isinstance(result, SendFailed)
    assert (result.status, result.code) == (500, 131000)
    [record] = meta.stand_in.sends
    assert record.sent and record.callback == "our-id"


async def test_a_timeout_is_send_failed_with_no_status_and_nothing_secret(meta) -> None:
    meta.stand_in.timeout_sends_next(1)
    started = time.monotonic()
    result = await meta.sender(timeout_s=0.3).text(NUMBER, CUSTOMER, "rahasia klien", callback="c")
    assert time.monotonic() - started < 2
    assert_failed_unanswered(result, "timeout", "send timed out (read)")


async def test_a_slow_answer_within_the_timeout_is_sent(meta) -> None:
    meta.stand_in.send_latency_s = 0.2
    assert isinstance(await meta.sender(timeout_s=2).text(NUMBER, CUSTOMER, "x", callback="c"), Sent)


async def test_a_refused_connection_is_send_failed_transport_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = GraphSend(f"http://127.0.0.1:{port}/v21.0", TOKEN, timeout_s=2)
    try:
        result = await sender.text(NUMBER, CUSTOMER, "rahasia", callback="c")
    finally:
        await sender.close()
    assert_failed_unanswered(result, "transport error",
                             "send failed in transport (ClientConnectorError)")


async def test_the_pool_bounds_concurrent_connections(meta) -> None:
    meta.stand_in.send_latency_s = 0.2
    sender = meta.sender(max_connections=2)
    started = time.monotonic()
    results = await asyncio.gather(*(sender.text(NUMBER, to, "x", callback="c")
                                     for to in customers(4)))
    assert all(isinstance(r, Sent) for r in results)
    assert time.monotonic() - started >= 0.4  # two rounds of two


# -- answers the stand-in does not give (a local server) ---------------------------------------


async def test_a_200_without_a_message_id_is_send_failed_200(answering) -> None:
    for body in ({"messaging_product": "whatsapp", "messages": []}, {"messages": [{}]}, []):
        sender = await answering(
            replying(lambda body=body: web.json_response(body)))
        result = await sender.text(NUMBER, CUSTOMER, "x", callback="c")
        assert isinstance(result, SendFailed)
        assert (result.status, result.code) == (200, None)
    sender = await answering(replying(lambda: web.Response(text="<html>ok</html>")))
    assert (await sender.text(NUMBER, CUSTOMER, "x", callback="c")).status == 200


async def test_error_user_title_is_preferred_and_subcode_ignored(answering) -> None:
    error = {"error": {
        "message": "(#131009) Parameter value is not valid", "type": "OAuthException",
        "code": 131009, "error_subcode": 2494010, "error_user_title": "Invalid recipient",
        "error_user_msg": "…", "error_data": {"messaging_product": "whatsapp",
                                              "details": "Recipient phone number invalid"},
        "fbtrace_id": "Axyz",
    }}
    sender = await answering(replying(lambda: web.json_response(error, status=400)))
    result = await sender.text(NUMBER, CUSTOMER, "x", callback="c")
    assert result == SendFailed(
        status=400, code=131009, title="Invalid recipient",
        message="(#131009) Parameter value is not valid",
        details="Recipient phone number invalid",
    )


async def test_a_non_graph_error_body_is_send_failed_with_status_only(answering) -> None:
    sender = await answering(replying(lambda:
        web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html")))
    result = await sender.text(NUMBER, CUSTOMER, "x", callback="c")
    assert result == SendFailed(502, None, "HTTP 502", "HTTP 502 without a Graph API error body", "")


async def test_a_huge_answer_is_read_only_up_to_its_cap(answering) -> None:
    huge = b'{"error": {"message": "' + b"x" * (1024 * 1024) + b'"}}'
    sender = await answering(replying(lambda:
        web.Response(status=500, body=huge, content_type="application/json")))
    result = await sender.text(NUMBER, CUSTOMER, "x", callback="c")
    assert result == SendFailed(500, None, "HTTP 500", "HTTP 500 without a Graph API error body", "")


async def test_the_request_goes_to_the_numbers_messages_path_with_the_bearer_token(
    answering,
) -> None:
    seen: list[tuple[str, str, dict[str, str], Any]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.method, request.path, dict(request.headers), await request.json()))
        return web.json_response({"messages": [{"id": "wamid.X"}]})

    sender = await answering(handler)
    assert await sender.text(NUMBER, CUSTOMER, "x", callback="c") == Sent("wamid.X", None)
    [(method, path, headers, body)] = seen
    assert (method, path) == ("POST", f"/v21.0/{NUMBER}/messages")
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"
    assert body["to"] == "+" + CUSTOMER


async def test_a_given_session_is_not_closed_but_an_own_one_is(meta) -> None:
    given = aiohttp.ClientSession()
    borrowing = GraphSend(meta.base_url, TOKEN, session=given)
    assert isinstance(await borrowing.text(NUMBER, CUSTOMER, "x", callback="c"), Sent)
    await borrowing.close()
    assert not given.closed
    await given.close()
    own = GraphSend(meta.base_url, TOKEN)
    assert isinstance(await own.text(NUMBER, CUSTOMER, "x", callback="c"), Sent)
    await own.close()
    assert own._pooled().closed


async def test_constructor_arguments_are_validated() -> None:
    for options in ({"timeout_s": 0}, {"max_connections": 0}):
        with pytest.raises(ValueError):
            GraphSend("http://x/v21.0", TOKEN, **options)
    for token in ("", "with\nnewline", "tökén"):
        with pytest.raises(ValueError):
            GraphSend("http://x/v21.0", token)


# -- the status webhooks that follow -----------------------------------------------------------


async def test_status_webhooks_follow_a_send_signed_in_order_with_our_id(live_meta) -> None:
    with Receiver() as receiver:
        live_meta.stand_in.deliver_statuses_to(receiver.url, APP_SECRET, delay_s=0.01)
        result = await live_meta.sender().text(NUMBER, CUSTOMER, "x", callback="our-message-42")
        assert isinstance(result, Sent)
        statuses = receiver.wait_for(3)
    for raw, headers in receiver.posts:
        assert verify(APP_SECRET, raw, headers["X-Hub-Signature-256"])
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert {s["id"] for s in statuses} == {result.wamid}
    assert {s["biz_opaque_callback_data"] for s in statuses} == {"our-message-42"}
    assert {s["recipient_id"] for s in statuses} == {CUSTOMER}


async def test_a_failed_status_carries_metas_errors(live_meta) -> None:
    with Receiver() as receiver:
        live_meta.stand_in.deliver_statuses_to(receiver.url, APP_SECRET, delay_s=0)
        live_meta.stand_in.fail_status_for_next(1, 131047)
        result = await live_meta.sender().text(NUMBER, CUSTOMER, "x", callback="our-message-43")
        statuses = receiver.wait_for(2)
        await asyncio.sleep(0.1)
        assert len(receiver.posts) == 2
    assert isinstance(result, Sent)
    assert [s["status"] for s in statuses] == ["sent", "failed"]
    [error] = statuses[1]["errors"]
    assert error["code"] == 131047
    assert error["title"] == "Re-engagement message"
    assert "24 hours" in error["error_data"]["details"]
    assert error["href"].startswith("https://developers.facebook.com/")
