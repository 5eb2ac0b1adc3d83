"""Checks every inbound media file gets (pure: bytes in, verdicts out).

Rules (Meta, FACTS.md "Media"):

- **Kinds.** A media message's ``type`` is its kind: ``audio``, ``document``,
  ``image``, ``sticker``, ``video``. Any other type carries no file.
- **Size.** Meta's maxima per kind: audio 16 MB, document 100 MB, image 5 MB,
  sticker 100 KB (static) / 500 KB (animated), video 16 MB. Meta does not
  say which megabyte it means; here MB = 1024 * 1024 bytes and KB = 1024
  bytes, the larger reading, so nothing Meta accepted is refused for size.
  A deployment cap lowers a limit, never raises it.
- **Type.** The declared MIME type (parameters such as ``; codecs=opus``
  dropped, lowercased) must be one Meta supports for the kind (``ALLOWED``).
  The first ``SNIFF_BYTES`` bytes decide the real type (:func:`sniff`).
  Checked in this order, first failure wins:

  1. an executable or script is refused whatever was declared
     (``"executable"``) — an ELF or PE named ``.pdf`` never gets through;
  2. the declared type must be allowed for the kind (``"type_not_allowed"``);
  3. something must be recognised: every allowed type has a signature
     (``"unrecognised"``);
  4. the sniffed type must be compatible with the declared one
     (``"type_mismatch"``): equal, or one of the containers in
     ``COMPATIBLE`` — OOXML is a ZIP, legacy Office is OLE2, and
     ``audio/mp4`` may carry any ISO BMFF brand. ``text/plain`` needs text.

  A ZIP or OLE2 container is not opened here: what it holds (macros,
  nested files) is the virus scanner's business.
- **Plain text** is UTF-8 (a multi-byte character cut by the end of the
  sniffed head is fine) without NUL or control characters other than
  tab, CR, LF and form feed, and without any magic number. Empty is not text.
- **Checksum.** Meta's ``sha256`` is lowercase hex from ``GET /{media-id}``
  but has been seen base64-encoded in webhooks: hex in any case, standard
  or URL-safe base64 with or without padding are all accepted; anything
  else is malformed and fails. Comparison is constant-time.
- **EICAR.** The standard antivirus test string is detected anywhere in a
  stream, across chunk boundaries, in one pass.
"""

from __future__ import annotations

import base64
import codecs
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Literal


class MediaKind(StrEnum):
    """A media message type, as Meta names it."""

    AUDIO = "audio"
    DOCUMENT = "document"
    IMAGE = "image"
    STICKER = "sticker"
    VIDEO = "video"


def media_kind(message_type: str) -> MediaKind | None:
    """The kind of a message ``type``; ``None`` for types that carry no file."""
    try:
        return MediaKind(message_type)
    except ValueError:
        return None


# --- size ------------------------------------------------------------------

KB = 1024
MB = 1024 * KB

_SIZE_LIMIT: Mapping[MediaKind, int] = MappingProxyType({
    MediaKind.AUDIO: 16 * MB,
    MediaKind.DOCUMENT: 100 * MB,
    MediaKind.IMAGE: 5 * MB,
    MediaKind.STICKER: 100 * KB,
    MediaKind.VIDEO: 16 * MB,
})
_ANIMATED_STICKER_LIMIT = 500 * KB


def size_limit(kind: MediaKind, *, animated: bool = False, cap: int | None = None) -> int:
    """Largest acceptable file in bytes; ``animated`` matters for stickers only."""
    if cap is not None and cap < 0:
        raise ValueError(f"size cap must be >= 0, got {cap}")
    limit = _ANIMATED_STICKER_LIMIT if kind is MediaKind.STICKER and animated else _SIZE_LIMIT[kind]
    return limit if cap is None else min(limit, cap)


# --- types -----------------------------------------------------------------

_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
_LEGACY_OFFICE = ("application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint")

ALLOWED: Mapping[MediaKind, frozenset[str]] = MappingProxyType({
    MediaKind.AUDIO: frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}),
    MediaKind.DOCUMENT: frozenset({"text/plain", "application/pdf", *_LEGACY_OFFICE,
                                   _DOCX, _XLSX, _PPTX}),
    MediaKind.IMAGE: frozenset({"image/jpeg", "image/png"}),
    MediaKind.STICKER: frozenset({"image/webp"}),
    MediaKind.VIDEO: frozenset({"video/mp4", "video/3gpp"}),
})
"""Meta's supported MIME types per kind."""

_ZIP = "application/zip"
_OLE2 = "application/x-ole-storage"

COMPATIBLE: Mapping[str, frozenset[str]] = MappingProxyType({
    **{office: frozenset({_ZIP}) for office in (_DOCX, _XLSX, _PPTX)},
    **{office: frozenset({_OLE2}) for office in _LEGACY_OFFICE},
    "audio/mp4": frozenset({"video/mp4"}),
})
"""Sniffed types accepted for a declared type besides the declared type itself."""

EXECUTABLE: frozenset[str] = frozenset({
    "application/x-executable",   # ELF
    "application/x-dosexec",      # MZ: DOS / Windows PE
    "application/x-mach-binary",  # Mach-O (CAFEBABE also catches Java classes)
    "text/x-shellscript",         # any "#!" script
})
"""Sniffed types refused whatever was declared."""


def base_mime(declared: str) -> str:
    """The type without parameters: ``"Audio/OGG; codecs=opus"`` -> ``"audio/ogg"``."""
    return declared.split(";", 1)[0].strip().lower()


# --- sniffing --------------------------------------------------------------

SNIFF_BYTES = 512
"""Leading bytes :func:`sniff` looks at; more are ignored, fewer may miss text."""

# (type, ((offset, magic), ...)): the first row whose parts all match wins,
# so longer magics that share a prefix ("#!AMR" vs "#!") come first.
_SIGNATURES: tuple[tuple[str, tuple[tuple[int, bytes], ...]], ...] = (
    ("image/jpeg", ((0, b"\xff\xd8\xff"),)),
    ("image/png", ((0, b"\x89PNG\r\n\x1a\n"),)),
    ("image/gif", ((0, b"GIF87a"),)),
    ("image/gif", ((0, b"GIF89a"),)),
    ("image/webp", ((0, b"RIFF"), (8, b"WEBP"))),
    ("application/pdf", ((0, b"%PDF-"),)),
    ("audio/ogg", ((0, b"OggS"),)),
    ("audio/amr", ((0, b"#!AMR"),)),
    ("audio/mpeg", ((0, b"ID3"),)),
    ("audio/aac", ((0, b"ADIF"),)),
    (_ZIP, ((0, b"PK\x03\x04"),)),
    (_OLE2, ((0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"),)),
    ("application/x-executable", ((0, b"\x7fELF"),)),
    ("application/x-dosexec", ((0, b"MZ"),)),
    *(("application/x-mach-binary", ((0, bytes.fromhex(magic)),))
      for magic in ("feedface", "feedfacf", "cefaedfe", "cffaedfe", "cafebabe")),
    ("text/x-shellscript", ((0, b"#!"),)),
)

# ISO BMFF: a box of type 'ftyp' at offset 4; its major brand (4 bytes) decides.
_FTYP_BRANDS: tuple[tuple[bytes, str], ...] = ((b"3gp", "video/3gpp"), (b"M4A ", "audio/mp4"))
_FTYP_DEFAULT = "video/mp4"

_TEXT_CONTROLS_ALLOWED = frozenset("\t\n\r\f")


def sniff(head: bytes) -> str | None:
    """The real type of a file from its first bytes, or ``None`` if unknown."""
    head = bytes(head[:SNIFF_BYTES])
    for mime, parts in _SIGNATURES:
        if all(head[offset : offset + len(magic)] == magic for offset, magic in parts):
            return mime
    if head[4:8] == b"ftyp" and len(head) >= 12:
        brand = head[8:12]
        return next((m for prefix, m in _FTYP_BRANDS if brand.startswith(prefix)), _FTYP_DEFAULT)
    if _is_adts(head):
        return "audio/aac"
    if _is_mpeg_audio_frame(head):
        return "audio/mpeg"
    return "text/plain" if _is_text(head) else None


def _is_adts(head: bytes) -> bool:
    """AAC ADTS: 12-bit sync, layer 00 (0xFFF0/F1/F8/F9), a valid sampling index."""
    return (len(head) >= 7 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0
            and (head[2] >> 2) & 0x0F <= 12)


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """MPEG audio frame header: 11-bit sync, layer III or II, no reserved field values.

    Layer I (``FF FE`` / ``FF FF``) is left out: unused in practice, and ``FF FE``
    is also the byte-order mark of UTF-16 text.
    """
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = (head[1] >> 3) & 0b11, (head[1] >> 1) & 0b11
    bitrate, rate = head[2] >> 4, (head[2] >> 2) & 0b11
    return version != 0b01 and layer in (0b01, 0b10) and bitrate != 0b1111 and rate != 0b11


def _is_text(head: bytes) -> bool:
    try:  # final=False: a multi-byte character cut at the end is held back, not an error
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return bool(text) and not any(_is_control(c) for c in text)


def _is_control(char: str) -> bool:
    """C0 controls other than tab, LF, CR, FF; DEL; C1 controls."""
    code = ord(char)
    return (code < 0x20 and char not in _TEXT_CONTROLS_ALLOWED) or 0x7F <= code <= 0x9F


# --- type verdict ----------------------------------------------------------

Refusal = Literal["type_not_allowed", "executable", "type_mismatch", "unrecognised"]


@dataclass(frozen=True, slots=True)
class TypeVerdict:
    """Whether a file may be kept; ``reason`` is ``None`` exactly when ``ok``."""

    ok: bool
    reason: Refusal | None
    sniffed: str | None


def check_type(kind: MediaKind, declared_mime: str, head: bytes) -> TypeVerdict:
    """Judge a file of ``kind`` declared as ``declared_mime`` by its first bytes."""
    sniffed = sniff(head)
    declared = base_mime(declared_mime)
    reason: Refusal | None = None
    if sniffed in EXECUTABLE:
        reason = "executable"
    elif declared not in ALLOWED[kind]:
        reason = "type_not_allowed"
    elif sniffed is None:
        reason = "unrecognised"
    elif sniffed != declared and sniffed not in COMPATIBLE.get(declared, frozenset()):
        reason = "type_mismatch"
    return TypeVerdict(ok=reason is None, reason=reason, sniffed=sniffed)


# --- checksum --------------------------------------------------------------

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# 32 bytes = 43 base64 characters + one "="; one alphabet per string, never mixed.
_B64_32 = re.compile(r"[A-Za-z0-9+/]{43}=?|[A-Za-z0-9_-]{43}=?")
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


def _decode_sha256(expected: str) -> bytes | None:
    if _HEX64.fullmatch(expected):
        return bytes.fromhex(expected)
    if not _B64_32.fullmatch(expected):
        return None
    chars = expected.rstrip("=").translate(_URLSAFE_TO_STANDARD)
    raw = base64.b64decode(chars + "=")
    # The last character holds 2 unused bits: only the canonical (zero) spelling is well formed.
    return raw if base64.b64encode(raw).decode("ascii").rstrip("=") == chars else None


def sha256_matches(expected: str, digest: bytes) -> bool:
    """Whether Meta's ``sha256`` (hex or base64) names ``digest`` (32 raw bytes)."""
    decoded = _decode_sha256(expected)
    if decoded is None or len(digest) != len(decoded):
        return False
    return hmac.compare_digest(decoded, digest)


# --- EICAR -----------------------------------------------------------------

# Split in two so this source file does not itself match a scanner's signature.
EICAR: bytes = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
"""The 68-byte EICAR antivirus test string."""


class EicarScanner:
    """Streaming EICAR search: :meth:`feed` chunks in order, then read :attr:`found`.

    Keeps only the last ``len(EICAR) - 1`` bytes between chunks, so a match
    across any chunk boundary is seen and each byte is searched a bounded
    number of times: memory O(1), time O(total bytes).
    """

    __slots__ = ("_found", "_tail")

    def __init__(self) -> None:
        self._tail = b""
        self._found = False

    def feed(self, chunk: bytes) -> None:
        """Scan the next ``chunk`` of the stream."""
        if self._found:
            return
        window = self._tail + bytes(chunk)
        if EICAR in window:
            self._found = True
            self._tail = b""
        else:
            self._tail = window[-(len(EICAR) - 1) :]

    @property
    def found(self) -> bool:
        """Whether EICAR occurred in what was fed so far."""
        return self._found
