"""Malformed requests to the real process: refused, and nothing they carried
(a token, a message's text, a profile name) reaches its logs."""

from __future__ import annotations

import socket
import urllib.parse
from pathlib import Path

from tests.conftest import TENANT_TOKENS
from tests.e2e.outbound_helpers import Gateways, gateways  # noqa: F401 - fixture

TOKEN = TENANT_TOKENS["firm-a"]
WORDS = "Ibu Siti Rahmawati, sidang cerai besok jam 9"
NAME = "Siti Rahmawati"


def _send_raw(url: str, request: bytes) -> bytes:
    """Send ``request`` as is on a new connection; what came back before it closed."""
    parts = urllib.parse.urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def _malformed() -> list[bytes]:
    body = ('{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": '
            f'{{"contacts": [{{"profile": {{"name": "{NAME}"}}}}], '
            f'"messages": [{{"text": {{"body": "{WORDS}"}}}}]}}}}]}}]}}').encode()
    pad = "A" * 9000
    return [
        # bare LF line endings, to the webhook and to the API
        b"POST /webhook HTTP/1.1\nHost: x\nContent-Type: application/json\n"
        + f"Content-Length: {len(body)}\n\n".encode() + body,
        b"POST /api/v1/messages HTTP/1.1\nHost: x\n"
        + f"Authorization: Bearer {TOKEN}\nContent-Length: {len(body)}\n\n".encode() + body,
        # a request line over 8,190 bytes, a token in its query
        f"GET /ws?token={TOKEN}&note={urllib.parse.quote(WORDS)}&pad={pad} HTTP/1.1\r\n"
        "Host: x\r\n\r\n".encode(),
        # an Authorization header over 8,190 bytes
        f"GET /api/v1/conversations/6281234500301/messages HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {TOKEN}{pad}\r\nX-Note: {WORDS}\r\n\r\n".encode(),
        f"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Hub-Signature-256: sha256={TOKEN}\r\n"
        f"X-Pad: {pad}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body,
    ]


def test_malformed_requests_are_refused_and_leave_no_token_text_or_name_in_the_logs(
        tmp_path: Path, gateways: Gateways) -> None:  # noqa: F811
    gateway = gateways.start(tmp_path / "var")
    for request in _malformed():
        answer = _send_raw(gateway.url, request)
        assert answer[:9] in (b"HTTP/1.0 ", b"HTTP/1.1 ") and answer[9:10] == b"4", answer[:200]
    assert gateway.stop() == 0
    logged = gateway.log_text()
    refused = [e for e in gateway.log_events() if e.get("event") == "request_refused"]
    assert refused, logged[-2000:]
    for private in (TOKEN, "Rahmawati", "sidang", "cerai"):
        assert private not in logged, private
