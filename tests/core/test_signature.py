"""X-Hub-Signature-256 over raw bytes, and the unsigned GET handshake."""

from __future__ import annotations

import hashlib
import hmac
import json

from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors.core.signature import handshake, sign, verify

SECRET = b"app-secret"


def test_a_correct_signature_of_the_raw_bytes_verifies() -> None:
    body = b'{"object":"whatsapp_business_account"}'
    header = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    assert verify(SECRET, body, header)
    assert sign(SECRET, body) == header


def test_escaped_unicode_is_verified_as_sent_not_as_reserialised() -> None:
    raw = b'{"text":"Selamat pagi \\u2014 caf\\u00e9 \\ud83d\\ude00"}'  # Meta escapes unicode
    header = sign(SECRET, raw)
    assert verify(SECRET, raw, header)
    reserialised = json.dumps(json.loads(raw), ensure_ascii=False).encode()
    assert not verify(SECRET, reserialised, header)


def test_missing_malformed_and_wrong_signatures_are_refused() -> None:
    body = b"{}"
    good = sign(SECRET, body)
    for header in (None, "", good[7:], "sha1=" + good[7:], good.upper(), good[:-1], good + "0",
                   "sha256=" + "z" * 64, sign(b"other-secret", body)):
        assert not verify(SECRET, body, header), header


@given(body=st.binary(max_size=256), flip=st.integers(min_value=0, max_value=255))
def test_a_tampered_body_never_verifies(body: bytes, flip: int) -> None:
    header = sign(SECRET, body)
    tampered = body + b"x" if not body else bytes([body[0] ^ (flip or 1)]) + body[1:]
    assert not verify(SECRET, tampered, header)


def test_handshake_echoes_the_challenge_only_for_the_right_token() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "T", "hub.challenge": "1158201444"}
    assert handshake(params, "T") == "1158201444"
    assert handshake({**params, "hub.verify_token": "wrong"}, "T") is None
    assert handshake({**params, "hub.mode": "unsubscribe"}, "T") is None
    assert handshake({k: v for k, v in params.items() if k != "hub.challenge"}, "T") is None
    assert handshake(params, None) is None  # no verify token configured: refuse
