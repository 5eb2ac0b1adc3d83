"""The Graph API stand-in's messages endpoint: Meta's shapes, limits, scripted failures,
the request record and the status webhooks it sends back to the gateway."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from lawhub_actors.core.signature import verify
from lawhub_actors.simulator import traffic
from lawhub_actors.simulator.graph import GRAPH_VERSION, GraphStandIn, serve
from tests.simulator.conftest import AUTH, TOKEN

NUMBER = "106540352242922"
OTHER_NUMBER = "107611463353033"
CUSTOMER = "+6281234500001"
APP_SECRET = b"app-secret-for-status-webhooks"


def text_request(to: str = CUSTOMER, body: str = "Selamat pagi", **extra: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
        "type": "text", "text": {"body": body}, **extra,
    }


def template_request(
    to: str = CUSTOMER, name: str = "hearing_reminder", language: str = "id",
    params: tuple[str, ...] = ("Budi", "Senin"), **extra: Any,
) -> dict[str, Any]:
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if params:
        template["components"] = [{
            "type": "body", "parameters": [{"type": "text", "text": p} for p in params],
        }]
    return {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
        "type": "template", "template": template, **extra,
    }


async def send(
    client, request: Any, *, number: str = NUMBER, headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        f"/{GRAPH_VERSION}/{number}/messages", json=request,
        headers=AUTH if headers is None else headers,
    )
    return response.status, await response.json()


def without(request: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """``request`` with the key at ``path`` (keys into nested objects) deleted."""
    target = request
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return request


async def send_unanswered(client, request: dict[str, Any]) -> None:
    """Sends and gives up after 0.3 s without an answer (a timeout the test expects)."""
    with pytest.raises(asyncio.TimeoutError):
        await client.post(
            f"/{GRAPH_VERSION}/{NUMBER}/messages", json=request, headers=AUTH,
            timeout=aiohttp.ClientTimeout(total=0.3),
        )


async def send_many(client, requests: list[dict[str, Any]], **options: Any) -> list[int]:
    """Sends one after the other; the codes answered (0 for a 200)."""
    codes = []
    for request in requests:
        status, body = await send(client, request, **options)
        codes.append(0 if status == 200 else body["error"]["code"])
    return codes


def assert_meta_error(status: int, body: dict[str, Any], http: int, code: int) -> dict[str, Any]:
    assert status == http
    error = body["error"]
    assert error["code"] == code
    assert error["type"] in ("OAuthException", "GraphMethodException")
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fbtrace_id"], str) and error["fbtrace_id"]
    return error


def customers(count: int) -> list[str]:
    return [f"+62812345{n:05d}" for n in range(count)]


# -- shapes ------------------------------------------------------------------------------------


async def test_a_text_send_is_answered_with_metas_contacts_and_messages(client, stand_in) -> None:
    status, body = await send(client, text_request())
    assert status == 200
    assert set(body) == {"messaging_product", "contacts", "messages"}
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": CUSTOMER, "wa_id": "6281234500001"}]
    assert len(body["messages"]) == 1
    assert set(body["messages"][0]) == {"id"}
    assert re.fullmatch(r"wamid\.[A-Za-z0-9_-]+", body["messages"][0]["id"])


async def test_a_template_send_is_accepted_with_message_status_accepted(client) -> None:
    status, body = await send(client, template_request())
    assert status == 200
    assert body["messages"][0]["id"].startswith("wamid.")
    assert body["messages"][0]["message_status"] == "accepted"


async def test_each_accepted_send_gets_a_fresh_wamid(client) -> None:
    ids = set()
    for to in customers(20):
        _, body = await send(client, text_request(to))
        ids.add(body["messages"][0]["id"])
    assert len(ids) == 20


async def test_to_without_plus_gets_the_business_numbers_country_code_prepended(client) -> None:
    status, body = await send(client, text_request("6281234500001"))
    assert status == 200
    assert body["contacts"] == [{"input": "6281234500001", "wa_id": "626281234500001"}]


async def test_to_with_formatting_resolves_to_the_same_digits(client) -> None:
    _, body = await send(client, text_request("+62 812-3450-0001"))
    assert body["contacts"][0]["wa_id"] == "6281234500001"


async def test_a_registered_numbers_country_code_is_the_one_prepended(client, stand_in) -> None:
    stand_in.add_phone_number(NUMBER, "15550001111", country_code="1")
    _, body = await send(client, text_request("6281234500001"))
    assert body["contacts"][0]["wa_id"] == "16281234500001"


async def test_type_defaults_to_text_as_meta_documents(client) -> None:
    request = text_request()
    del request["type"]
    status, _ = await send(client, request)
    assert status == 200
    del request["text"]
    status, body = await send(client, request)
    error = assert_meta_error(status, body, 400, 100)
    assert error["message"] == "(#100) The parameter text.body is required."


# -- auth and validation -----------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
async def test_a_missing_or_wrong_token_gets_190_and_is_recorded(client, stand_in, headers) -> None:
    status, body = await send(client, text_request(), headers=headers)
    error = assert_meta_error(status, body, 401, 190)
    assert error["type"] == "OAuthException"
    [record] = stand_in.sends
    assert (record.status, record.code, record.sent) == (401, 190, False)
    assert record.to == CUSTOMER


@pytest.mark.parametrize(
    ("remove", "parameter"),
    [
        (("messaging_product",), "messaging_product"),
        (("to",), "to"),
        (("text", "body"), "text.body"),
    ],
)
async def test_a_missing_required_parameter_is_metas_100(client, stand_in, remove, parameter) -> None:
    status, body = await send(client, without(text_request(), remove))
    error = assert_meta_error(status, body, 400, 100)
    assert error["message"] == f"(#100) The parameter {parameter} is required."
    assert not stand_in.sends[-1].sent


@pytest.mark.parametrize(
    ("path", "parameter"),
    [(("template",), "template"), (("template", "name"), "template.name"),
     (("template", "language"), "template.language")],
)
async def test_a_template_without_name_or_language_is_metas_100(client, path, parameter) -> None:
    status, body = await send(client, without(template_request(), path))
    assert assert_meta_error(status, body, 400, 100)["message"] == (
        f"(#100) The parameter {parameter} is required."
    )


async def test_a_body_that_is_not_json_lacks_messaging_product(client, stand_in) -> None:
    response = await client.post(f"/{GRAPH_VERSION}/{NUMBER}/messages", data=b"to=+62", headers=AUTH)
    error = assert_meta_error(response.status, await response.json(), 400, 100)
    assert "messaging_product" in error["message"]
    assert stand_in.sends[-1].request is None


@pytest.mark.parametrize(
    "change",
    [
        {"messaging_product": "instagram"},
        {"type": "carrier_pigeon"},
        {"recipient_type": "everyone"},
        {"to": "not a number"},
        {"to": "+62"},
        {"biz_opaque_callback_data": "x" * 513},
        {"text": {"body": "x" * 4097}},
    ],
)
async def test_an_invalid_parameter_is_metas_100(client, stand_in, change) -> None:
    status, body = await send(client, {**text_request(), **change})
    assert_meta_error(status, body, 400, 100)
    assert not stand_in.sends[-1].sent


async def test_limits_of_callback_data_and_text_body_are_inclusive(client) -> None:
    status, _ = await send(client, text_request(CUSTOMER, body="y" * 4096,
                                                biz_opaque_callback_data="x" * 512))
    assert status == 200


@pytest.mark.parametrize("text", ["line\nbreak", "tab\there", "five     spaces", ""])
async def test_a_template_parameter_meta_refuses_is_100_with_its_details(client, text) -> None:
    status, body = await send(client, template_request(params=("Budi", text)))
    error = assert_meta_error(status, body, 400, 100)
    assert error["message"] == "(#100) Invalid parameter"
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert "text" in error["error_data"]["details"].lower()


async def test_an_unknown_phone_number_id_is_unsupported_post_once_numbers_are_registered(
    client, stand_in
) -> None:
    status, _ = await send(client, text_request(), number="999")
    assert status == 200  # nothing registered: any number sends
    stand_in.add_phone_number(NUMBER)
    status, body = await send(client, text_request(), number="999")
    error = assert_meta_error(status, body, 400, 100)
    assert error["type"] == "GraphMethodException"
    assert error["error_subcode"] == 33
    assert "Unsupported post request" in error["message"]
    status, _ = await send(client, text_request())
    assert status == 200


async def test_registered_templates_are_checked_like_meta(client, stand_in) -> None:
    stand_in.add_template("hearing_reminder", "id", params=2)
    stand_in.add_template("promo", "id", params=0, category="MARKETING", status="PAUSED")
    stand_in.add_template("old", "id", status="DISABLED")
    stand_in.add_template("draft", "id", status="PENDING")
    cases = [
        (template_request(), 0),
        (template_request(params=("Budi",)), 132000),
        (template_request(language="en"), 132001),
        (template_request(name="unknown"), 132001),
        (template_request(name="draft", params=()), 132001),
        (template_request(name="promo", params=()), 132015),
        (template_request(name="old", params=()), 132016),
    ]
    for request, code in cases:
        status, body = await send(client, request)
        if code == 0:
            assert status == 200
        else:
            error = assert_meta_error(status, body, 400, code)
            assert error["message"].startswith(f"(#{code}) ")
            assert error["error_data"]["details"]


# -- throughput --------------------------------------------------------------------------------


async def test_a_burst_of_100_at_80_mps_gets_80_accepted_then_130429(client, stand_in) -> None:
    codes = await send_many(client, [text_request(to) for to in customers(100)])
    assert codes == [0] * 80 + [130429] * 20
    status, body = await send(client, text_request("+6289999999999"))
    error = assert_meta_error(status, body, 400, 130429)
    assert error["message"] == "(#130429) Rate limit hit"
    assert error["type"] == "OAuthException"
    assert error["error_data"] == {
        "messaging_product": "whatsapp",
        "details": "Cloud API message throughput has been reached.",
    }
    assert sum(record.sent for record in stand_in.sends) == 80


async def test_the_throughput_window_slides_with_arrival_time(client, stand_in, clock) -> None:
    recipients = iter(customers(400))

    async def burst(count: int) -> list[int]:
        return await send_many(client, [text_request(next(recipients)) for _ in range(count)])

    assert await burst(40) == [0] * 40  # t = 0
    clock.advance(0.5)
    assert await burst(41) == [0] * 40 + [130429]  # t = 0.5: 80 in the last second
    clock.advance(0.4999)
    assert await burst(1) == [130429]  # t = 0.9999: the first 40 are still inside
    clock.advance(0.0001)
    assert await burst(41) == [0] * 40 + [130429]  # t = 1.0: they left the window
    clock.advance(0.5)
    assert await burst(41) == [0] * 40 + [130429]  # t = 1.5


async def test_refused_sends_use_no_throughput(client, stand_in, clock) -> None:
    recipients = iter(customers(300))
    codes = await send_many(client, [text_request(next(recipients)) for _ in range(200)])
    assert codes.count(0) == 80
    clock.advance(1.0)
    codes = await send_many(client, [text_request(next(recipients)) for _ in range(81)])
    assert codes == [0] * 80 + [130429]


async def test_throughput_is_per_phone_number_and_settable(client, stand_in) -> None:
    stand_in.set_throughput(NUMBER, 5)
    assert stand_in.throughput_of(NUMBER) == 5
    assert stand_in.throughput_of(OTHER_NUMBER) == 80
    requests = [text_request(to) for to in customers(10)]
    assert await send_many(client, requests) == [0] * 5 + [130429] * 5
    assert await send_many(client, requests, number=OTHER_NUMBER) == [0] * 10


async def test_throughput_can_be_switched_off_per_number_or_for_all(clock) -> None:
    stand_in = GraphStandIn(TOKEN, clock=clock, throughput_mps=None)
    stand_in.set_throughput(OTHER_NUMBER, 3)
    async with serve(stand_in) as base_url, aiohttp.ClientSession(headers=AUTH) as session:
        async def codes(number: str, count: int) -> list[int]:
            result = []
            for to in customers(count):
                async with session.post(f"{base_url}/{number}/messages", json=text_request(to)) as r:
                    result.append(r.status)
            return result

        assert await codes(NUMBER, 200) == [200] * 200
        assert await codes(OTHER_NUMBER, 4) == [200] * 3 + [400]
        stand_in.set_throughput(OTHER_NUMBER, None)
        assert await codes(OTHER_NUMBER, 4) == [200] * 4


async def test_limit_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        GraphStandIn(TOKEN, throughput_mps=0)
    with pytest.raises(ValueError):
        GraphStandIn(TOKEN, pair_interval_s=0)
    with pytest.raises(ValueError):
        GraphStandIn(TOKEN, pair_burst=0)
    with pytest.raises(ValueError):
        GraphStandIn(TOKEN).fail_sends_next(-1)


# -- pair rate ---------------------------------------------------------------------------------


async def test_the_pair_rate_allows_a_burst_of_45_then_131056(client, stand_in) -> None:
    codes = await send_many(client, [text_request() for _ in range(50)])
    assert codes == [0] * 45 + [131056] * 5
    status, body = await send(client, text_request())
    error = assert_meta_error(status, body, 400, 131056)
    assert error["message"] == (
        "(#131056) (Business Account, Consumer Account) pair rate limit hit"
    )
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert "same phone number" in error["error_data"]["details"]


async def test_the_pair_rate_refills_one_message_per_6_s(client, clock) -> None:
    assert (await send_many(client, [text_request() for _ in range(46)]))[-1] == 131056
    clock.advance(5.99)
    assert await send_many(client, [text_request()]) == [131056]
    clock.advance(0.01)
    assert await send_many(client, [text_request(), text_request()]) == [0, 131056]
    clock.advance(12.0)
    assert await send_many(client, [text_request() for _ in range(3)]) == [0, 0, 131056]


async def test_a_quiet_pair_recovers_its_whole_burst_and_no_more(client, clock) -> None:
    await send_many(client, [text_request() for _ in range(45)])
    clock.advance(3600)
    codes = await send_many(client, [text_request() for _ in range(46)])
    assert codes == [0] * 45 + [131056]


async def test_the_pair_rate_is_per_recipient_and_per_phone_number(client) -> None:
    await send_many(client, [text_request() for _ in range(45)])
    assert await send_many(client, [text_request()]) == [131056]
    assert await send_many(client, [text_request("+6281234500002")]) == [0]
    assert await send_many(client, [text_request()], number=OTHER_NUMBER) == [0]


async def test_spellings_of_one_recipient_share_its_pair_quota(client) -> None:
    await send_many(client, [text_request("+62 812 3450 0001") for _ in range(45)])
    assert await send_many(client, [text_request("+6281234500001")]) == [131056]


async def test_the_pair_rate_is_configurable_and_can_be_switched_off(client, stand_in, clock) -> None:
    stand_in.set_pair_rate(1.0, burst=2)
    assert await send_many(client, [text_request() for _ in range(3)]) == [0, 0, 131056]
    clock.advance(1.0)
    assert await send_many(client, [text_request() for _ in range(2)]) == [0, 131056]
    stand_in.set_pair_rate(None)
    assert await send_many(client, [text_request() for _ in range(60)]) == [0] * 60


async def test_the_throughput_limit_is_checked_before_the_pair_rate(client, stand_in) -> None:
    stand_in.set_throughput(NUMBER, 2)
    stand_in.set_pair_rate(60.0, burst=1)
    requests = [text_request(), text_request("+6281234500002"), text_request()]
    assert await send_many(client, requests) == [0, 0, 130429]  # the pair is also over


# -- scripted failures -------------------------------------------------------------------------


async def test_fail_sends_next_answers_any_code_with_metas_body_and_sends_nothing(
    client, stand_in
) -> None:
    stand_in.set_pair_rate(6.0, burst=1)
    stand_in.fail_sends_next(2, 400, 131047)
    for _ in range(2):
        status, body = await send(client, text_request())
        error = assert_meta_error(status, body, 400, 131047)
        assert error["message"] == "(#131047) Re-engagement message"
        assert error["type"] == "OAuthException"
        assert error["error_data"]["messaging_product"] == "whatsapp"
        assert "24 hours" in error["error_data"]["details"]
    status, _ = await send(client, text_request())
    assert status == 200  # the failures used none of the pair quota
    assert [(r.status, r.code, r.sent) for r in stand_in.sends] == [
        (400, 131047, False), (400, 131047, False), (200, None, True),
    ]


@pytest.mark.parametrize(("status", "code"), [(500, 131000), (503, 2), (400, 190), (400, 987654)])
async def test_fail_sends_next_takes_any_status_and_code(client, stand_in, status, code) -> None:
    stand_in.fail_sends_next(1, status, code)
    answered, body = await send(client, text_request())
    error = assert_meta_error(answered, body, status, code)
    assert error["message"].startswith(f"(#{code}) ")
    assert error["error_data"]["details"]


async def test_fail_sends_next_defaults_the_code_from_the_status(client, stand_in) -> None:
    stand_in.fail_sends_next(1, 429)
    stand_in.fail_sends_next(1, 500)
    assert await send_many(client, [text_request(), text_request()]) == [130429, 131000]


async def test_an_invalid_request_does_not_use_up_a_scripted_failure(client, stand_in) -> None:
    stand_in.fail_sends_next(1, 400, 131026)
    _, body = await send(client, {"to": CUSTOMER})
    assert body["error"]["code"] == 100
    assert await send_many(client, [text_request(), text_request()]) == [131026, 0]


async def test_scripted_outcomes_apply_in_the_order_they_were_queued(client, stand_in) -> None:
    stand_in.fail_sends_next(1, 400, 131026)
    stand_in.accept_then_fail_next(1, 500)
    stand_in.fail_sends_next(1, 400, 131047)
    codes = await send_many(client, [text_request() for _ in range(4)])
    assert codes == [131026, 131000, 131047, 0]
    assert [record.sent for record in stand_in.sends] == [False, True, False, True]


async def test_send_latency_delays_the_answer(client, stand_in) -> None:
    stand_in.send_latency_s = 0.3
    started = time.monotonic()
    status, _ = await send(client, text_request())
    assert status == 200
    assert time.monotonic() - started >= 0.3


async def test_a_timed_out_send_is_never_answered_and_sends_nothing(client, stand_in) -> None:
    stand_in.timeout_sends_next(1)
    await send_unanswered(client, text_request())
    status, _ = await send(client, text_request())
    assert status == 200
    first, second = stand_in.sends
    assert (first.status, first.code, first.sent) == (None, None, False)
    assert (second.status, second.sent) == (200, True)


async def test_shutdown_drops_a_hanging_send_promptly(stand_in) -> None:
    stand_in.timeout_sends_next(1)
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with serve(stand_in) as base_url:
            async def post() -> int:
                async with session.post(f"{base_url}/{NUMBER}/messages", json=text_request()) as r:
                    return r.status

            hanging = asyncio.create_task(post())
            await asyncio.sleep(0.2)
            assert not hanging.done()
            started = time.monotonic()
        assert time.monotonic() - started < 2
        with pytest.raises(aiohttp.ClientError):
            await hanging


# -- the request record ------------------------------------------------------------------------


async def test_every_send_is_recorded_with_arrival_recipient_type_body_callback_and_answer(
    client, stand_in, clock
) -> None:
    await send(client, text_request(biz_opaque_callback_data="msg-1"))
    clock.advance(0.25)
    await send(client, template_request("6281234500002", biz_opaque_callback_data="msg-2"))
    clock.advance(0.25)
    stand_in.fail_sends_next(1, 400, 131026)
    await send(client, text_request(body="third", biz_opaque_callback_data="msg-3"),
               number=OTHER_NUMBER)
    text, template, failed = stand_in.sends
    assert (text.at, text.phone_number_id, text.to, text.wa_id, text.type) == (
        1_767_000_000.0, NUMBER, CUSTOMER, "6281234500001", "text"
    )
    assert (text.body, text.callback, text.status, text.code) == (
        "Selamat pagi", "msg-1", 200, None
    )
    assert text.wamid is not None and text.sent
    assert text.request == text_request(biz_opaque_callback_data="msg-1")
    assert (template.at, template.type, template.wa_id, template.callback) == (
        1_767_000_000.25, "template", "626281234500002", "msg-2"
    )
    assert template.body["name"] == "hearing_reminder"
    assert (failed.at, failed.phone_number_id, failed.body, failed.status, failed.code) == (
        1_767_000_000.5, OTHER_NUMBER, "third", 400, 131026
    )
    assert failed.wamid is None


async def test_the_record_gives_per_second_rates_and_per_recipient_spacing(
    client, stand_in, clock
) -> None:
    for _ in range(30):  # 10 recipients, 3 sends each per simulated 0.1 s, for 3 s
        for to in customers(10):
            await send(client, text_request(to))
        clock.advance(0.1)
    accepted = [record for record in stand_in.sends if record.sent]
    per_window = max(
        sum(1 for other in accepted if record.at <= other.at < record.at + 1.0)
        for record in accepted
    )
    assert per_window == 80
    by_recipient: dict[str, list[float]] = {}
    for record in accepted:
        by_recipient.setdefault(record.wa_id, []).append(record.at)
    assert all(len(times) <= 45 for times in by_recipient.values())


# -- status webhooks ---------------------------------------------------------------------------


class Receiver:
    """A tiny gateway: answers ``answers`` in turn (then 200), keeps every POST."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.answers = list(answers or [])
        self.posts: list[tuple[bytes, dict[str, str]]] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((await request.read(), dict(request.headers)))
        self.arrived.set()
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    def documents(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _ in self.posts]

    def statuses(self) -> list[dict[str, Any]]:
        return [
            status
            for document in self.documents()
            for entry in document["entry"]
            for change in entry["changes"]
            for status in change["value"].get("statuses", [])
        ]

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count:
            assert time.monotonic() < deadline, f"{len(self.posts)} of {count} webhooks came"
            await asyncio.sleep(0.01)


async def receive_statuses(
    stand_in: GraphStandIn, aiohttp_server, answers: list[int] | None = None, **delivery: Any,
) -> Receiver:
    """A Receiver on a local server that the stand-in delivers its status webhooks to,
    signed with APP_SECRET (``delivery``: the options of ``deliver_statuses_to``)."""
    receiver = Receiver(answers)
    app = web.Application()
    app.router.add_post("/webhook", receiver.handle)
    server = await aiohttp_server(app)
    stand_in.deliver_statuses_to(str(server.make_url("/webhook")), APP_SECRET, **delivery)
    return receiver


async def test_an_accepted_send_is_followed_by_signed_sent_delivered_read_in_order(
    client, stand_in, aiohttp_server
) -> None:
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=0.01)
    _, body = await send(client, text_request(biz_opaque_callback_data="our-id-1"))
    wamid = body["messages"][0]["id"]
    await receiver.wait_for(3)
    await asyncio.sleep(0.1)
    assert len(receiver.posts) == 3
    for raw, headers in receiver.posts:
        assert verify(APP_SECRET, raw, headers["X-Hub-Signature-256"])
        assert headers["Content-Type"] == "application/json"
    assert [s["status"] for s in receiver.statuses()] == ["sent", "delivered", "read"]
    for document in receiver.documents():
        assert document["object"] == "whatsapp_business_account"
        [entry] = document["entry"]
        assert entry["id"] == traffic.WABA_ID
        [change] = entry["changes"]
        assert change["field"] == "messages"
        assert change["value"]["metadata"]["phone_number_id"] == NUMBER
    for status in receiver.statuses():
        assert status["id"] == wamid
        assert status["recipient_id"] == "6281234500001"
        assert status["biz_opaque_callback_data"] == "our-id-1"
        assert "conversation" not in status
        assert status["pricing"] == {"billable": False, "pricing_model": "PMP",
                                     "category": "service", "type": "free_customer_service"}
        assert status["timestamp"].isdigit()
    assert [(p.status, p.attempt, p.answer) for p in stand_in.status_posts] == [
        ("sent", 1, 200), ("delivered", 1, 200), ("read", 1, 200),
    ]


async def test_a_template_status_carries_the_templates_pricing_category(
    client, stand_in, aiohttp_server
) -> None:
    stand_in.add_template("promo", "id", params=0, category="MARKETING")
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=0, statuses=("sent",))
    await send(client, template_request(name="promo", params=()))
    await receiver.wait_for(1)
    assert receiver.statuses()[0]["pricing"] == {
        "billable": True, "pricing_model": "PMP", "category": "marketing", "type": "regular",
    }


async def test_a_registered_number_posts_with_its_display_number_and_waba(
    client, stand_in, aiohttp_server
) -> None:
    stand_in.add_phone_number(NUMBER, "628111000001", waba_id="102290129340399")
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=0, statuses=("sent",))
    await send(client, text_request())
    await receiver.wait_for(1)
    [document] = receiver.documents()
    assert document["entry"][0]["id"] == "102290129340399"
    assert document["entry"][0]["changes"][0]["value"]["metadata"] == {
        "display_phone_number": "628111000001", "phone_number_id": NUMBER,
    }


async def test_statuses_of_each_message_stay_in_order_across_many_sends(
    client, stand_in, aiohttp_server
) -> None:
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=0.001)
    wamids = []
    for n, to in enumerate(customers(20)):
        _, body = await send(client, text_request(to, biz_opaque_callback_data=f"id-{n}"))
        wamids.append(body["messages"][0]["id"])
    await receiver.wait_for(60)
    for wamid in wamids:
        kinds = [s["status"] for s in receiver.statuses() if s["id"] == wamid]
        assert kinds == ["sent", "delivered", "read"]


async def test_a_non_200_from_the_gateway_is_retried_and_order_is_kept(
    client, stand_in, aiohttp_server
) -> None:
    receiver = await receive_statuses(
        stand_in, aiohttp_server, answers=[500, 503], delay_s=0, retry_delay_s=0.01,
    )
    await send(client, text_request())
    await receiver.wait_for(5)
    assert [s["status"] for s in receiver.statuses()] == ["sent"] * 3 + ["delivered", "read"]
    assert receiver.posts[0][0] == receiver.posts[2][0]  # the retry is the same body
    assert [(p.status, p.attempt, p.answer) for p in stand_in.status_posts] == [
        ("sent", 1, 500), ("sent", 2, 503), ("sent", 3, 200),
        ("delivered", 1, 200), ("read", 1, 200),
    ]


async def test_a_status_is_given_up_after_its_attempts(client, stand_in, aiohttp_server) -> None:
    receiver = await receive_statuses(
        stand_in, aiohttp_server, answers=[500, 500], delay_s=0, statuses=("sent", "delivered"),
        attempts=2, retry_delay_s=0.01,
    )
    await send(client, text_request())
    await receiver.wait_for(3)
    assert [s["status"] for s in receiver.statuses()] == ["sent", "sent", "delivered"]


async def test_an_unreachable_gateway_is_recorded_as_transport_failures(client, stand_in) -> None:
    stand_in.deliver_statuses_to("http://127.0.0.1:9/webhook", APP_SECRET, delay_s=0,
                                 statuses=("sent",), attempts=2, retry_delay_s=0.01)
    await send(client, text_request())
    deadline = time.monotonic() + 5
    while len(stand_in.status_posts) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert [(p.attempt, p.answer) for p in stand_in.status_posts] == [(1, None), (2, None)]


async def test_fail_status_for_next_sends_sent_then_failed_with_metas_errors(
    client, stand_in, aiohttp_server
) -> None:
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=0)
    stand_in.fail_status_for_next(1, 131026)
    _, body = await send(client, text_request(biz_opaque_callback_data="our-id-7"))
    failed_wamid = body["messages"][0]["id"]
    await receiver.wait_for(2)
    _, body = await send(client, text_request("+6281234500002"))
    await receiver.wait_for(5)
    first = [s for s in receiver.statuses() if s["id"] == failed_wamid]
    assert [s["status"] for s in first] == ["sent", "failed"]
    failed = first[1]
    assert failed["biz_opaque_callback_data"] == "our-id-7"
    assert "pricing" not in failed
    assert failed["errors"] == [{
        "code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
        "error_data": {"details": "Message Undeliverable."},
        "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
    }]
    second = [s["status"] for s in receiver.statuses() if s["id"] == body["messages"][0]["id"]]
    assert second == ["sent", "delivered", "read"]
    for raw, headers in receiver.posts:
        assert verify(APP_SECRET, raw, headers["X-Hub-Signature-256"])


async def test_a_failed_status_can_come_without_sent(client, stand_in, aiohttp_server) -> None:
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=0)
    stand_in.fail_status_for_next(1, 131049, after_sent=False)
    await send(client, template_request())
    await receiver.wait_for(1)
    await asyncio.sleep(0.05)
    [status] = receiver.statuses()
    assert status["status"] == "failed"
    assert status["errors"][0]["code"] == 131049


async def test_fail_status_applies_to_accepted_sends_only(client, stand_in, aiohttp_server) -> None:
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=0,
                                      statuses=("sent", "delivered"))
    stand_in.fail_status_for_next(1, 131047)
    stand_in.fail_sends_next(1, 400, 131000)
    await send(client, text_request())  # refused: no status, keeps the failure for the next
    await send(client, text_request())
    await receiver.wait_for(2)
    assert [s["status"] for s in receiver.statuses()] == ["sent", "failed"]


async def test_accept_then_fail_answers_5xx_yet_the_message_goes_out(
    client, stand_in, aiohttp_server
) -> None:
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=0)
    stand_in.accept_then_fail_next(1, 502)
    status, body = await send(client, text_request(biz_opaque_callback_data="our-id-5"))
    assert_meta_error(status, body, 502, 131000)
    [record] = stand_in.sends
    assert record.sent and (record.status, record.code) == (502, 131000)
    await receiver.wait_for(3)
    assert [s["status"] for s in receiver.statuses()] == ["sent", "delivered", "read"]
    assert {s["id"] for s in receiver.statuses()} == {record.wamid}
    assert {s["biz_opaque_callback_data"] for s in receiver.statuses()} == {"our-id-5"}


async def test_accept_then_fail_uses_quota_like_a_sent_message(client, stand_in) -> None:
    stand_in.set_pair_rate(6.0, burst=1)
    stand_in.accept_then_fail_next(1)
    assert await send_many(client, [text_request(), text_request()]) == [131000, 131056]


async def test_a_timeout_after_sending_is_unanswered_yet_statuses_follow(
    client, stand_in, aiohttp_server
) -> None:
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=0)
    stand_in.timeout_sends_next(1, sent=True)
    await send_unanswered(client, text_request(biz_opaque_callback_data="x"))
    [record] = stand_in.sends
    assert record.sent and record.status is None
    await receiver.wait_for(3)
    assert {s["biz_opaque_callback_data"] for s in receiver.statuses()} == {"x"}


async def test_a_status_can_arrive_before_the_send_is_answered(
    client, stand_in, aiohttp_server
) -> None:
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=0, statuses=("sent",))
    stand_in.send_latency_s = 0.3
    answered = asyncio.create_task(send(client, text_request()))
    await asyncio.wait_for(receiver.arrived.wait(), 2)
    assert not answered.done()
    status, body = await answered
    assert status == 200
    assert receiver.statuses()[0]["id"] == body["messages"][0]["id"]


async def test_non_ascii_callback_data_is_escaped_and_signed_over_the_raw_bytes(
    client, stand_in, aiohttp_server
) -> None:
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=0, statuses=("sent",))
    await send(client, text_request(biz_opaque_callback_data="kasus-Müller-ü"))
    await receiver.wait_for(1)
    raw, headers = receiver.posts[0]
    assert b"\\u00fc" in raw and "ü".encode() not in raw
    assert verify(APP_SECRET, raw, headers["X-Hub-Signature-256"])
    assert not verify(b"another secret", raw, headers["X-Hub-Signature-256"])
    assert receiver.statuses()[0]["biz_opaque_callback_data"] == "kasus-Müller-ü"


async def test_no_statuses_for_refused_sends_or_after_stop_statuses(
    client, stand_in, aiohttp_server
) -> None:
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=0, statuses=("sent",))
    stand_in.fail_sends_next(1, 400, 131026)
    await send(client, text_request())
    await send(client, {"to": CUSTOMER})
    stand_in.stop_statuses()
    await send(client, text_request())
    await asyncio.sleep(0.2)
    assert receiver.posts == []


async def test_deliver_statuses_to_refuses_unknown_statuses_and_bad_settings(stand_in) -> None:
    with pytest.raises(ValueError):
        stand_in.deliver_statuses_to("http://x/", APP_SECRET, statuses=("sent", "seen"))
    with pytest.raises(ValueError):
        stand_in.deliver_statuses_to("http://x/", APP_SECRET, attempts=0)
    with pytest.raises(ValueError):
        stand_in.deliver_statuses_to("http://x/", APP_SECRET, delay_s=-1)


async def test_shutdown_cancels_pending_status_deliveries_promptly(
    stand_in, aiohttp_server
) -> None:
    receiver = await receive_statuses(stand_in, aiohttp_server, delay_s=30)
    async with serve(stand_in) as base_url, aiohttp.ClientSession(headers=AUTH) as session:
        async with session.post(f"{base_url}/{NUMBER}/messages", json=text_request()) as r:
            assert r.status == 200
        started = time.monotonic()
    assert time.monotonic() - started < 2
    assert receiver.posts == []


async def test_a_template_error_comes_before_a_scripted_failure(client, stand_in) -> None:
    stand_in.add_template("hearing_reminder", "id", params=2)
    stand_in.fail_sends_next(1, 500, 131000)
    requests = [template_request(name="unknown"), template_request()]
    assert await send_many(client, requests) == [132001, 131000]
