"""Per-tenant AES-256-GCM: round trips, tampering, tenants, rotation, streams."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lawhub_actors.core.crypto import (
    AuthenticationFailed,
    CryptoError,
    Keyring,
    MalformedBlob,
    Sealed,
    UnknownKeyId,
    parse_key_id,
)

K1 = bytes(range(32))
K2 = bytes(range(100, 132))
BODY = b"Pak, suami saya ditangkap polisi tadi malam. NIK 3174054501900001"


def counter_nonces() -> Callable[[int], bytes]:
    counter = itertools.count()
    return lambda n: next(counter).to_bytes(n, "big")


@pytest.fixture
def ring() -> Keyring:
    return Keyring({1: K1}, current=1)


def flip(blob: bytes, bit: int) -> bytes:
    data = bytearray(blob)
    data[bit // 8] ^= 1 << (bit % 8)
    return bytes(data)


def test_sealed_data_opens_again_and_records_its_key_version(ring: Keyring) -> None:
    sealed = ring.seal("firm-a", BODY, aad=b"msg-1")
    assert sealed.key_id == "v1"
    assert len(sealed.blob) == 12 + len(BODY) + 16
    assert ring.open("firm-a", sealed.key_id, sealed.blob, aad=b"msg-1") == BODY


def test_empty_plaintext_round_trips(ring: Keyring) -> None:
    sealed = ring.seal("firm-a", b"")
    assert ring.open("firm-a", sealed.key_id, sealed.blob) == b""


@given(bit=st.integers(min_value=0, max_value=(12 + len(BODY) + 16) * 8 - 1))
@settings(max_examples=60)
def test_flipping_any_bit_is_detected(bit: int) -> None:
    ring = Keyring({1: K1}, current=1)
    sealed = ring.seal("firm-a", BODY)
    with pytest.raises(AuthenticationFailed, match="tampered"):
        ring.open("firm-a", sealed.key_id, flip(sealed.blob, bit))


def test_another_tenants_key_cannot_open_the_data(ring: Keyring) -> None:
    sealed = ring.seal("firm-a", BODY)
    with pytest.raises(AuthenticationFailed, match="another tenant"):
        ring.open("firm-b", sealed.key_id, sealed.blob)


def test_different_aad_is_refused(ring: Keyring) -> None:
    sealed = ring.seal("firm-a", BODY, aad=b"msg-1")
    with pytest.raises(AuthenticationFailed):
        ring.open("firm-a", sealed.key_id, sealed.blob, aad=b"msg-2")


@pytest.mark.parametrize("kid", ["v2", "v", "1", "V1", "v01", "v-1", "", "v1 "])
def test_unknown_or_malformed_key_ids_raise_a_clear_error(ring: Keyring, kid: str) -> None:
    sealed = ring.seal("firm-a", BODY)
    with pytest.raises(UnknownKeyId):
        ring.open("firm-a", kid, sealed.blob)


def test_a_blob_too_short_to_hold_nonce_and_tag_is_malformed(ring: Keyring) -> None:
    with pytest.raises(MalformedBlob):
        ring.open("firm-a", "v1", b"\x00" * 27)


def test_every_error_is_a_crypto_error() -> None:
    for error in (AuthenticationFailed, UnknownKeyId, MalformedBlob):
        assert issubclass(error, CryptoError)


def test_rotation_opens_old_data_with_v1_and_seals_new_data_with_v2() -> None:
    old = Keyring({1: K1}, current=1).seal("firm-a", b"old body")
    rotated = Keyring({1: K1, 2: K2}, current=2)
    new = rotated.seal("firm-a", b"new body")
    assert (old.key_id, new.key_id) == ("v1", "v2")
    assert rotated.open("firm-a", "v1", old.blob) == b"old body"
    assert rotated.open("firm-a", "v2", new.blob) == b"new body"
    assert rotated.needs_rotation("v1") and not rotated.needs_rotation("v2")
    with pytest.raises(AuthenticationFailed):
        rotated.open("firm-a", "v2", old.blob)  # the version recorded beside it matters
    with pytest.raises(UnknownKeyId):
        Keyring({1: K1}, current=1).open("firm-a", "v2", new.blob)


def test_tenant_keys_are_distinct_per_tenant_and_version() -> None:
    nonce = bytes(12)
    ring = Keyring({1: K1, 2: K2}, current=1, nonce_source=lambda n: nonce[:n])
    blobs = {ring.seal(t, BODY).blob for t in ("firm-a", "firm-b", "firm-a/v1", "firm")}
    assert len(blobs) == 4


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="current"):
        Keyring({1: K1}, current=2)
    with pytest.raises(ValueError, match="32 bytes"):
        Keyring({1: b"short"}, current=1)
    with pytest.raises(ValueError, match="tenant"):
        Keyring({1: K1}, current=1).seal("", BODY)
    with pytest.raises(ValueError, match="nonce source"):
        Keyring({1: K1}, current=1, nonce_source=lambda n: b"x").seal("firm-a", BODY)


def test_the_keyring_repr_shows_versions_never_keys(ring: Keyring) -> None:
    assert repr(ring) == "Keyring(versions=[1], current=1)"
    assert K1.hex() not in repr(ring)


def test_parse_key_id() -> None:
    assert parse_key_id("v1") == 1 and parse_key_id("v0") == 0 and parse_key_id("v12") == 12


def test_nonces_come_from_the_injected_source_and_never_repeat_across_seals() -> None:
    ring = Keyring({1: K1}, current=1, nonce_source=counter_nonces())
    a, b = ring.seal("firm-a", BODY), ring.seal("firm-a", BODY)
    assert a.blob[:12] == (0).to_bytes(12, "big") and b.blob[:12] == (1).to_bytes(12, "big")
    assert a.blob != b.blob


@given(plaintext=st.binary(min_size=8, max_size=300), aad=st.binary(max_size=16))
def test_ciphertext_never_contains_the_plaintext(plaintext: bytes, aad: bytes) -> None:
    ring = Keyring({1: K1}, current=1)
    sealed = ring.seal("firm-a", plaintext, aad)
    assert plaintext not in sealed.blob
    stream = b"".join(ring.seal_stream("firm-a", [plaintext], chunk_size=64))
    assert plaintext not in stream
    assert ring.open("firm-a", sealed.key_id, sealed.blob, aad) == plaintext


# -- streams -----------------------------------------------------------------


def seal_stream(ring: Keyring, data: bytes, chunk_size: int, pieces: int = 3) -> list[bytes]:
    step = max(1, len(data) // pieces)
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    return list(ring.seal_stream("firm-a", chunks, chunk_size=chunk_size))


def open_all(ring: Keyring, blobs: list[bytes], tenant: str = "firm-a") -> bytes:
    return b"".join(ring.open_stream(tenant, blobs))


@given(
    data=st.binary(max_size=2000),
    chunk_size=st.integers(min_value=1, max_value=300),
    split=st.integers(min_value=1, max_value=97),
)
def test_a_stream_round_trips_however_its_bytes_are_split(
    data: bytes, chunk_size: int, split: int
) -> None:
    ring = Keyring({1: K1}, current=1)
    sealed = b"".join(seal_stream(ring, data, chunk_size))
    resplit = [sealed[i : i + split] for i in range(0, len(sealed), split)]
    assert open_all(ring, resplit) == data


def test_a_stream_is_a_header_then_one_frame_per_chunk(ring: Keyring) -> None:
    frames = seal_stream(ring, b"x" * 250, chunk_size=100)
    assert [len(f) for f in frames] == [20, 116, 116, 66]
    exact = seal_stream(ring, b"x" * 200, chunk_size=100)
    assert [len(f) for f in exact] == [20, 116, 116]  # the last full frame is flagged last
    assert [len(f) for f in seal_stream(ring, b"", chunk_size=100)] == [20, 16]


def test_the_stream_opener_rejects_truncation_at_a_frame_boundary(ring: Keyring) -> None:
    frames = seal_stream(ring, b"y" * 250, chunk_size=100)
    for cut in range(1, len(frames)):
        with pytest.raises(CryptoError):
            open_all(ring, frames[:cut])


def test_the_stream_opener_rejects_truncation_inside_a_frame(ring: Keyring) -> None:
    sealed = b"".join(seal_stream(ring, b"y" * 250, chunk_size=100))
    for cut in (len(sealed) - 1, len(sealed) - 17, 25, 19):
        with pytest.raises(CryptoError):
            open_all(ring, [sealed[:cut]])


def test_the_stream_opener_rejects_reordered_duplicated_or_extended_frames(ring: Keyring) -> None:
    header, f0, f1, f2 = seal_stream(ring, bytes(range(250)), chunk_size=100)
    for bad in ([header, f1, f0, f2], [header, f0, f0, f1, f2], [header, f0, f1, f2, f2]):
        with pytest.raises(AuthenticationFailed):
            open_all(ring, bad)


def test_the_stream_opener_rejects_another_tenant_and_a_changed_header(ring: Keyring) -> None:
    header, *frames = seal_stream(ring, b"z" * 150, chunk_size=100)
    with pytest.raises(AuthenticationFailed):
        open_all(ring, [header, *frames], tenant="firm-b")
    changed = header[:-1] + bytes([header[-1] ^ 1])  # another nonce prefix
    with pytest.raises(AuthenticationFailed):
        open_all(ring, [changed, *frames])
    with pytest.raises(MalformedBlob):
        open_all(ring, [b"XXXX" + header[4:], *frames])
    with pytest.raises(MalformedBlob):
        open_all(ring, [header[:10]])


def test_streams_rotate_like_small_values() -> None:
    old = list(Keyring({1: K1}, current=1).seal_stream("firm-a", [b"old media"]))
    rotated = Keyring({1: K1, 2: K2}, current=2)
    assert open_all(rotated, old) == b"old media"
    assert open_all(rotated, list(rotated.seal_stream("firm-a", [b"new"]))) == b"new"
    with pytest.raises(UnknownKeyId):
        open_all(Keyring({2: K2}, current=2), old)


def test_a_stream_with_a_bad_chunk_size_is_refused(ring: Keyring) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        ring.seal_stream("firm-a", [b"x"], chunk_size=0)


def test_sealed_is_a_small_value_object() -> None:
    assert Sealed("v1", b"x") == Sealed("v1", b"x")


# -- blind: what the store keys a customer by ---------------------------------------


def test_blind_is_stable_per_tenant_and_reveals_nothing_of_the_number(ring: Keyring) -> None:
    ref = ring.blind("firm-a", "6281234500001")
    assert ref == ring.blind("firm-a", "6281234500001")
    assert ref.startswith("h.") and len(ref) == 34 and ref[2:].isalnum()
    assert not any(ch.isdigit() and ch not in "234567" for ch in ref[2:])  # base32: no 0, 1, 8, 9
    assert "6281234500001" not in ref
    assert ring.blind("firm-b", "6281234500001") != ref  # one person at two firms: unlinkable
    assert ring.blind("firm-a", "6281234500002") != ref


def test_blind_survives_a_key_rotation_and_needs_the_key(ring: Keyring) -> None:
    ref = ring.blind("firm-a", "6281234500001")
    rotated = Keyring({1: K1, 2: K2}, current=2)
    assert rotated.blind("firm-a", "6281234500001") == ref  # the oldest version keys it
    assert Keyring({1: K2}, current=1).blind("firm-a", "6281234500001") != ref


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=40))
@settings(max_examples=50)
def test_blind_never_maps_two_customers_of_a_tenant_to_one_ref(a: str, b: str) -> None:
    ring = Keyring({1: K1}, current=1)
    assert (ring.blind("t", a) == ring.blind("t", b)) == (a == b)
