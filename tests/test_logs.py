"""Log lines are JSON and never carry message content, phone numbers or secrets."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors import logs
from lawhub_actors.settings import Secrets

PHONE_FORMATS = [
    "+62 811 1000 001",
    "+62-811-1000-001",
    "+6281110000001",
    "6281110000001",
    "0811-1000-001",
    "(0811) 1000 001",
    "+1 (415) 555-0100",
    "08111000001",
]


class Capture:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def capture() -> Iterator[Capture]:
    """Logging configured onto a StringIO; the previous global setup restored after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    logs.configure(level="info", stream=stream)
    yield Capture(stream)
    structlog.reset_defaults()
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_a_log_line_keeps_ids_but_not_the_body_phone_numbers_or_secrets(
    capture: Capture,
) -> None:
    logs.register_secret("s3cret-app-value-1")

    structlog.get_logger().info(
        "inbound.received",
        tenant="firm-a",
        wamid="wamid.HBgNNjI4MTExMDAwMDAwMRUCABIYFjNFQjA=",
        phone_number_id="106540352242922",
        msg_id="01HZX8ZK3V6ZQ",
        body="Selamat pagi, saya ingin konsultasi soal warisan",
        wa_id="6281110000001",
        note="customer said call +62 811 1000 001 or 0811-1000-001",
        header="hmac key s3cret-app-value-1",
    )

    [line] = capture.lines()
    text = capture.text()
    assert "konsultasi" not in text
    assert "1000 001" not in text
    assert "6281110000001" not in text
    assert "s3cret-app-value-1" not in text
    assert line["event"] == "inbound.received"
    assert line["tenant"] == "firm-a"
    assert line["wamid"] == "wamid.HBgNNjI4MTExMDAwMDAwMRUCABIYFjNFQjA="
    assert line["phone_number_id"] == "106540352242922"
    assert line["msg_id"] == "01HZX8ZK3V6ZQ"
    assert line["body"] == "[redacted]"
    assert line["wa_id"] == "[redacted]"
    assert line["note"] == "customer said call [phone] or [phone]"
    assert line["header"] == "hmac key [redacted]"


def test_a_line_has_level_and_an_iso_utc_timestamp(capture: Capture) -> None:
    structlog.get_logger().warning("breaker.opened", phone_number_id="106540352242922")

    [line] = capture.lines()
    assert line["level"] == "warning"
    assert line["timestamp"].endswith("Z")
    assert line["timestamp"][10] == "T"


@pytest.mark.parametrize("phone", PHONE_FORMATS)
def test_phone_numbers_in_any_format_are_masked_in_free_text(phone: str) -> None:
    assert logs.scrub(f"reply to {phone} today") == "reply to [phone] today"


@pytest.mark.parametrize("text", ["port 8080", "attempt 3 of 6", "1234567", "took 12.5 ms"])
def test_short_numbers_survive(text: str) -> None:
    assert logs.scrub(text) == text


def test_sensitive_keys_are_redacted_at_any_depth_and_in_any_case() -> None:
    event = {
        "event": "outbound.request",
        "request": {
            "Authorization": "Bearer tok",
            "X-Hub-Signature-256": "sha256=ab",
            "json": {"to": "x", "type": "text", "text": {"body": "hi"}},
            "messages": [{"From": "x", "Caption": "c", "id": "m1"}],
        },
        "customer_phone": "x",
        "API_TOKEN": "x",
        "display": "x",
    }

    out = logs.redact(None, "info", event)

    assert out == {
        "event": "outbound.request",
        "request": {
            "Authorization": "[redacted]",
            "X-Hub-Signature-256": "[redacted]",
            "json": {"to": "[redacted]", "type": "text", "text": "[redacted]"},
            "messages": [{"From": "[redacted]", "Caption": "[redacted]", "id": "m1"}],
        },
        "customer_phone": "[redacted]",
        "API_TOKEN": "[redacted]",
        "display": "[redacted]",
    }


def test_the_event_name_is_kept_but_scrubbed() -> None:
    logs.register_secret("event-secret-42")

    out = logs.redact(None, "info", {"event": "sent to 6281110000001 with event-secret-42"})

    assert out["event"] == "sent to [phone] with [redacted]"


def test_id_keys_keep_their_digits_but_not_secrets() -> None:
    logs.register_secret("id-secret-value")

    out = logs.redact(
        None,
        "info",
        {
            "event": "limiter.started",
            "path": "outbound/limiters/106540352242922",
            "phone_number_id": "106540352242922",
            "tenant": "id-secret-value",
        },
    )

    assert out["path"] == "outbound/limiters/106540352242922"
    assert out["phone_number_id"] == "106540352242922"
    assert out["tenant"] == "[redacted]"


def test_bytes_and_objects_never_reach_the_line_raw() -> None:
    class Inbound:
        def __repr__(self) -> str:
            return "Inbound(from=6281110000001)"

    out = logs.redact(None, "info", {"event": "e", "raw_bytes": b"hello", "obj": Inbound()})

    assert out["raw_bytes"] == "[5 bytes]"
    assert out["obj"] == "Inbound(from=[phone])"


def test_configure_registers_every_secret_from_the_environment(capture: Capture) -> None:
    key = bytes(range(100, 132))
    secrets = Secrets.from_env(
        {
            "LAWHUB_APP_SECRET": "app-secret-xyz",
            "LAWHUB_ACCESS_TOKEN": "EAAG-access-token-xyz",
            "LAWHUB_ADMIN_TOKEN": "admin-token-xyz",
            "LAWHUB_MASTER_KEY": base64.b64encode(key).decode(),
            "LAWHUB_REDIS_URL": "redis://:redis-pass-xyz@localhost:6379/0",
        }
    )
    logs.configure(stream=capture.stream, secrets=secrets)

    structlog.get_logger().error(
        "graph.failed",
        detail="app-secret-xyz EAAG-access-token-xyz admin-token-xyz",
        url="redis://:redis-pass-xyz@localhost",
        key=base64.b64encode(key).decode(),
    )

    text = capture.text()
    for value in ("app-secret-xyz", "access-token-xyz", "admin-token-xyz", "redis-pass-xyz"):
        assert value not in text
    assert base64.b64encode(key).decode() not in text


def test_a_short_secret_is_redacted_as_a_whole_word_only() -> None:
    logs.register_secret("zq7")  # a verify token may be this short

    assert logs.scrub("hub.challenge for zq7, then zq7x and xzq7") == (
        "hub.challenge for [redacted], then zq7x and xzq7")


@pytest.mark.parametrize(("text", "expected"), [
    ("Authorization: Bearer tok_live.AbC-123/x=", "Authorization: [redacted]"),
    ("retrying with Bearer tok_live.AbC-123/x= now", "retrying with Bearer [redacted] now"),
    ("authorization: basic dXNlcjpwYXNz", "authorization: [redacted]"),
    ("{'Authorization': 'Basic dXNlcjpwYXNz', 'X': 1}", "{'Authorization': '[redacted]', 'X': 1}"),
    ("{'access_token': 'EAABsecret', 'n': 1}", "{'access_token': '[redacted]', 'n': 1}"),
    ('{"access_token":"EAABsecret","n":1}', '{"access_token":"[redacted]","n":1}'),
    ("client_secret=abc&fb_exchange_token=def", "client_secret=[redacted]&fb_exchange_token=[redacted]"),
    ("/x?token%3Dabc123", "/x?token%3D[redacted]"),
    ("a basic configuration error", "a basic configuration error"),
    ("GET /ws?since=3&token=t0k3n HTTP/1.1", "GET /ws?since=3&token=[redacted] HTTP/1.1"),
    ("/webhook?hub.mode=subscribe&hub.verify_token=v&hub.challenge=1",
     "/webhook?hub.mode=subscribe&hub.verify_token=[redacted]&hub.challenge=1"),
    ("b'POST /x?access_token=EAAG123 HTTP/1.1'", "b'POST /x?access_token=[redacted] HTTP/1.1'"),
    ("password=hunter2; path=/", "password=[redacted]; path=/"),
    ("the token was refused", "the token was refused"),
])
def test_credentials_in_free_text_are_redacted_by_their_shape(text: str, expected: str) -> None:
    assert logs.scrub(text, phones=False) == expected


def test_a_request_refused_before_any_handler_is_logged_as_its_refusal_only(
    capture: Capture,
) -> None:
    from aiohttp.http_exceptions import BadHttpMessage

    raw = "POST /api/v1/messages\n{\"text\": \"Ibu Siti, sidang besok\"}\nX-Api: tok_9f8e7d"
    try:
        raise BadHttpMessage(f"Invalid line: {raw!r}")
    except BadHttpMessage:
        logging.getLogger("aiohttp.server").exception("Error handling request from %s",
                                                      "10.0.0.7")
    [line] = capture.lines()
    assert line["event"] == "request_refused"
    assert (line["refusal"], line["status"]) == ("BadHttpMessage", 400)
    for private in ("Ibu Siti", "sidang", "tok_9f8e7d", "10.0.0.7"):
        assert private not in capture.text()


def test_repeated_stdlib_lines_are_limited_and_the_next_one_counts_those_left_out() -> None:
    now = [0.0]
    limiter = logs.RepeatLimiter(per_window=2, window_s=10.0, clock=lambda: now[0])

    def record(msg: str = "socket.accept() out of system resource") -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, msg, (), None)

    assert [limiter.filter(record()) for _ in range(5)] == [True, True, False, False, False]
    assert limiter.filter(record("another message")) is True  # its own window
    now[0] = 10.0
    first = record()
    assert limiter.filter(first) is True and first.suppressed == 3  # type: ignore[attr-defined]
    again = record()
    assert limiter.filter(again) is True and not hasattr(again, "suppressed")


def test_the_stdlib_handler_limits_a_flood_of_one_line_but_never_our_own(
        capture: Capture) -> None:
    for _ in range(1000):
        logging.getLogger("asyncio").error("socket.accept() out of system resource")
    for _ in range(20):
        logging.getLogger("supervisors.cell").error("actor crashed")
    events = [line["event"] for line in capture.lines()]
    assert events.count("socket.accept() out of system resource") == logs.REPEATS_PER_WINDOW
    assert events.count("actor crashed") == 20


def test_stdlib_logging_goes_through_the_same_redaction(capture: Capture) -> None:
    logging.getLogger("aiohttp.access").info("GET /api/v1/conversations/6281110000001/messages 200")

    [line] = capture.lines()
    assert line["logger"] == "aiohttp.access"
    assert line["event"] == "GET /api/v1/conversations/[phone]/messages 200"


def test_stdlib_extra_fields_are_kept_and_redacted(capture: Capture) -> None:
    logging.getLogger("supervisors.cell").error(
        "actor crashed",
        extra={"path": "inbound/sessions/firm-a/0", "body": "my divorce papers", "to": "+6281110000001"},
    )

    [line] = capture.lines()
    assert line["path"] == "inbound/sessions/firm-a/0"
    assert line["body"] == "[redacted]" and line["to"] == "[redacted]"
    assert "divorce" not in capture.text() and "6281110000001" not in capture.text()


def test_exception_tracebacks_are_scrubbed(capture: Capture) -> None:
    try:
        raise ValueError("no consent for 6281110000001")
    except ValueError:
        structlog.get_logger().exception("outbound.rejected")
        logging.getLogger("pykka").exception("actor crashed")

    lines = capture.lines()
    assert len(lines) == 2
    for line in lines:
        assert "ValueError: no consent for [phone]" in line["exception"]
    assert "6281110000001" not in capture.text()


def test_lines_below_the_level_are_dropped(capture: Capture) -> None:
    logs.configure(level="warning", stream=capture.stream)

    structlog.get_logger().info("quiet")
    logging.getLogger("x").info("quiet too")
    structlog.get_logger().warning("loud")

    assert [line["event"] for line in capture.lines()] == ["loud"]


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        logs.configure(level="chatty")


def test_conversation_ref_is_short_stable_and_does_not_contain_the_number() -> None:
    ref = logs.conversation_ref("firm-a", "6281110000001")

    assert ref == logs.conversation_ref("firm-a", "6281110000001")
    assert ref != logs.conversation_ref("firm-b", "6281110000001")
    assert ref != logs.conversation_ref("firm-a", "6281110000002")
    assert len(ref) <= 20
    assert "6281110000001" not in ref
    assert logs.scrub(ref) == ref


def test_conversation_ref_depends_on_the_master_key() -> None:
    logs.set_pseudonym_key(b"k" * 32)
    first = logs.conversation_ref("firm-a", "6281110000001")
    logs.set_pseudonym_key(b"j" * 32)
    second = logs.conversation_ref("firm-a", "6281110000001")
    logs.set_pseudonym_key(b"k" * 32)

    assert first != second
    assert logs.conversation_ref("firm-a", "6281110000001") == first


phones = st.builds(
    lambda plus, digits, seps: plus + "".join(d + s for d, s in zip(digits, seps, strict=False)),
    st.sampled_from(["", "+"]),
    st.text(alphabet="0123456789", min_size=8, max_size=15),
    st.lists(st.sampled_from(["", "", " ", "-"]), min_size=15, max_size=15),
)


@given(before=st.text(), phone=phones, after=st.text())
def test_no_phone_like_digit_run_survives_redaction(before: str, phone: str, after: str) -> None:
    out = logs.redact(None, "info", {"event": "e", "note": f"{before}{phone}{after}"})["note"]

    assert phone.strip(" -") not in out
    assert logs.PHONE_PATTERN.search(out) is None


def test_a_line_per_connection_from_asyncio_counts_as_one_line() -> None:
    limiter = logs.RepeatLimiter(per_window=2, window_s=10.0, clock=lambda: 0.0)

    def record(fd: int) -> logging.LogRecord:
        message = (f"Fatal read error on socket transport\nprotocol: <Guarded object at "
                   f"0x7f{fd:08x}>\ntransport: <_SelectorSocketTransport fd={fd}>")
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, (), None)

    assert [limiter.filter(record(fd)) for fd in range(10, 15)] == [True, True, False, False,
                                                                    False]
