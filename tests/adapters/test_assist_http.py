"""HttpClassifier against a real local HTTP server: answers, failures, masked text only."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from lawhub_actors.adapters.assist_http import HttpClassifier
from lawhub_actors.core.assist import Intent, RuleClassifier, Urgency
from lawhub_actors.core.masking import MaskedText, mask

RAW = "Pak, suami saya Budi Santoso ditangkap polisi. HP 0812-3456-7890, NIK 3174054501900001"
PII = ("0812", "3456-7890", "3174054501900001", "Budi", "Santoso")

Reply = tuple[int, bytes]


@dataclass
class FakeModel:
    """What the local server answers, and every body it received."""

    reply: Callable[[], Reply] = lambda: (200, b"{}")
    bodies: list[bytes] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""


@pytest.fixture
def model() -> Iterator[FakeModel]:
    state = FakeModel()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.bodies.append(body)
            status, payload = state.reply()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/classify"
    try:
        yield state
    finally:
        state.release.set()  # let a deliberately slow handler finish
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    # The server only ever saw masked text, whatever the test did.
    for body in state.bodies:
        sent = json.loads(body)
        assert set(sent) == {"text"}
        assert not any(fragment in sent["text"] for fragment in PII), sent
        assert sent["text"] == mask(RAW, names=["Budi Santoso"]).text


def answer(payload: object, status: int = 200) -> Callable[[], Reply]:
    return lambda: (status, json.dumps(payload).encode())


@pytest.fixture
def masked() -> MaskedText:
    return mask(RAW, names=["Budi Santoso"])


def test_a_valid_remote_answer_is_used(model: FakeModel, masked: MaskedText) -> None:
    model.reply = answer({"intent": "family", "urgency": "high", "confidence": 0.82, "x": 1})
    with HttpClassifier(model.url, timeout_s=2) as classifier:
        result = classifier.classify(masked)
    assert (result.intent, result.urgency, result.confidence) == (Intent.FAMILY, Urgency.HIGH, 0.82)
    assert result.reasons == ("remote",)
    assert json.loads(model.bodies[0]) == {"text": masked.text}


def test_a_timeout_falls_back_to_the_rules(model: FakeModel, masked: MaskedText) -> None:
    def slow() -> Reply:
        model.release.wait(timeout=10)
        return 200, b'{"intent": "family", "urgency": "low", "confidence": 1}'

    model.reply = slow
    with HttpClassifier(model.url, timeout_s=0.2) as classifier:
        result = classifier.classify(masked)
    local = RuleClassifier().classify(masked)
    assert result.reasons == ("fallback:timeout", *local.reasons)
    assert (result.intent, result.urgency) == (Intent.CRIMINAL, Urgency.CRITICAL)
    assert len(model.bodies) == 1


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (lambda: (200, b"not json at all"), "fallback:bad_json"),
        (lambda: (200, b""), "fallback:bad_json"),
        (answer({"intent": "astrology", "urgency": "high", "confidence": 0.5}), "fallback:invalid_answer"),
        (answer({"intent": "family", "urgency": "whenever", "confidence": 0.5}), "fallback:invalid_answer"),
        (answer({"intent": "family", "urgency": "high", "confidence": 7}), "fallback:invalid_answer"),
        (answer({"intent": "family", "urgency": "high"}), "fallback:invalid_answer"),
        (answer(["family", "high", 0.5]), "fallback:invalid_answer"),
        (answer({"error": "overloaded"}, status=503), "fallback:http_503"),
        (answer({"intent": "family", "urgency": "high", "confidence": 0.5}, status=404), "fallback:http_404"),
    ],
)
def test_a_bad_response_falls_back_to_the_rules_saying_why(
    model: FakeModel, masked: MaskedText, reply: Callable[[], Reply], reason: str
) -> None:
    model.reply = reply
    with HttpClassifier(model.url, timeout_s=2) as classifier:
        result = classifier.classify(masked)
    assert result.reasons[0] == reason
    assert (result.intent, result.urgency) == (Intent.CRIMINAL, Urgency.CRITICAL)
    assert "astrology" not in " ".join(result.reasons)


def test_an_unreachable_service_falls_back_with_a_transport_reason(masked: MaskedText) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens there any more
    with HttpClassifier(f"http://127.0.0.1:{port}/", timeout_s=2) as classifier:
        result = classifier.classify(masked)
    assert result.reasons[0] == "fallback:transport"


def test_an_injected_client_is_used_and_left_open(model: FakeModel, masked: MaskedText) -> None:
    model.reply = answer({"intent": "debt", "urgency": "normal", "confidence": 0.4})
    with httpx.Client() as client:
        classifier = HttpClassifier(model.url, timeout_s=2, client=client)
        assert classifier.classify(masked).intent is Intent.DEBT
        classifier.close()
        assert not client.is_closed


def test_raw_text_is_refused_before_anything_is_sent(model: FakeModel) -> None:
    with HttpClassifier(model.url, timeout_s=2) as classifier, pytest.raises(TypeError):
        classifier.classify(RAW)  # type: ignore[arg-type]
    assert model.bodies == []
