"""Per-tenant keys and AES-256-GCM sealing of bodies and media (pure).

Keys:

- The operator supplies master keys by *version* (``{1: k1, 2: k2}``, each
  at least 32 bytes, from the environment) and says which is current. New
  data is sealed with the current version; the version is recorded beside
  the data as a key id (``"v2"``) so older data still opens after rotation.
- Each tenant gets its own 256-bit key per version, derived with
  HKDF-SHA256 (info ``b"lawhub/tenant/" + tenant + b"/v" + version``) and
  cached. One tenant's key never opens another tenant's data.

Small values (:meth:`Keyring.seal` / :meth:`Keyring.open`)::

    Sealed(key_id="v1", blob = nonce(12) || ciphertext || tag(16))

Streams (:meth:`Keyring.seal_stream` / :meth:`Keyring.open_stream`), for
media too large to hold twice in memory::

    header = b"LHS1" || version(u32) || chunk_size(u32) || prefix(8 random bytes)
    frame i = AES-GCM(key, nonce = prefix || i(u32),
                      aad = header || last(1 byte) || caller's aad)

Every frame but the last holds exactly ``chunk_size`` plaintext bytes; the
last holds 0..chunk_size and is flagged in its AAD, so a stream cut at a
frame boundary, frames swapped or dropped, or a changed header all fail
authentication. The opener yields each frame's plaintext as soon as the
frame is verified: the stream as a whole is only known to be complete when
iteration ends without an error, so write it somewhere temporary and keep
it only then.

Errors (all :class:`CryptoError`)::

    CryptoError
    ├── UnknownKeyId          key id malformed or its version not in the keyring
    ├── MalformedBlob         too short, bad stream header
    └── AuthenticationFailed  tampered, wrong tenant, wrong aad, truncated, reordered

Randomness (nonces, stream prefixes) comes from ``nonce_source``, default
``os.urandom``; tests pass their own.
"""

from __future__ import annotations

import base64
import functools
import hmac
import itertools
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
TAG_BYTES = 16
MIN_MASTER_KEY_BYTES = 32
STREAM_MAGIC = b"LHS1"
STREAM_PREFIX_BYTES = 8
DEFAULT_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 16 * 1024 * 1024
_HEADER = struct.Struct(">4sII8s")
_MAX_FRAMES = 2**32
BLIND_CACHE = 65_536
"""Refs :meth:`Keyring.blind` remembers (least recently used go first)."""

BLIND_PREFIX = "h."
"""What every :meth:`Keyring.blind` value starts with (no customer key does)."""

_KEY_ID = re.compile(r"v(0|[1-9][0-9]{0,9})")


class CryptoError(Exception):
    """Base of every error raised here."""


class UnknownKeyId(CryptoError):
    """The key id is malformed or names a version this keyring does not hold."""


class MalformedBlob(CryptoError):
    """The sealed bytes are too short or their header is not ours."""


class AuthenticationFailed(CryptoError):
    """GCM refused: tampered data, another tenant's key, other aad, or a cut stream."""


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed value: the key version that sealed it and ``nonce || ciphertext || tag``."""

    key_id: str
    blob: bytes


def key_id(version: int) -> str:
    """The key id recorded beside data sealed with ``version``."""
    return f"v{version}"


def parse_key_id(kid: str) -> int:
    """``"v3"`` → 3; :class:`UnknownKeyId` for anything else."""
    match = _KEY_ID.fullmatch(kid)
    if match is None:
        raise UnknownKeyId(f"malformed key id {kid!r}")
    return int(match.group(1))


class Keyring:
    """Master keys by version, the current version, and the derived per-tenant keys."""

    def __init__(
        self,
        master_keys: Mapping[int, bytes],
        current: int,
        *,
        nonce_source: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if current not in master_keys:
            raise ValueError(f"current key version {current} is not among the master keys")
        for version, key in master_keys.items():
            if version < 0:
                raise ValueError(f"key version {version} is negative")
            if len(key) < MIN_MASTER_KEY_BYTES:
                raise ValueError(f"master key v{version} is shorter than 32 bytes")
        self._masters: dict[int, bytes] = dict(master_keys)
        self._current = current
        self._nonce_source = nonce_source
        self._cache: dict[tuple[str, int], AESGCM] = {}
        self._blind_keys: dict[str, bytes] = {}
        self._blind_cached = functools.lru_cache(maxsize=BLIND_CACHE)(self._blind)

    def __repr__(self) -> str:
        return f"Keyring(versions={sorted(self._masters)}, current={self._current})"

    @property
    def current_key_id(self) -> str:
        """Key id new data is sealed with."""
        return key_id(self._current)

    def needs_rotation(self, kid: str) -> bool:
        """Whether data sealed under ``kid`` should be re-sealed with the current version."""
        return parse_key_id(kid) != self._current

    # -- keys ---------------------------------------------------------------

    def _aead(self, tenant: str, version: int) -> AESGCM:
        if not tenant:
            raise ValueError("tenant must not be empty")
        cached = self._cache.get((tenant, version))
        if cached is not None:
            return cached
        master = self._masters.get(version)
        if master is None:
            raise UnknownKeyId(f"no master key for version {version}")
        info = b"lawhub/tenant/" + tenant.encode() + b"/v" + str(version).encode()
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
        aead = AESGCM(hkdf.derive(master))
        self._cache[(tenant, version)] = aead
        return aead

    def _random(self, n: int) -> bytes:
        value = self._nonce_source(n)
        if len(value) != n:
            raise ValueError(f"nonce source returned {len(value)} bytes, wanted {n}")
        return value

    # -- lookups by a keyed hash ----------------------------------------------

    def blind(self, tenant: str, value: str) -> str:
        """A stable keyed hash of ``value`` for ``tenant`` (``"h."`` and 32
        base32 letters): what the store keys a customer by, so the database
        alone reveals no client's number, and one person's refs at two firms
        cannot be linked. Its key comes from the *oldest* master key version,
        so it stays the same across rotations: keep that version for as long
        as the data it keys exists (as for opening old data). The last
        :data:`BLIND_CACHE` values are remembered: one message asks for its
        customer's ref several times."""
        if not tenant:
            raise ValueError("tenant must not be empty")
        return self._blind_cached(tenant, value)

    def _blind(self, tenant: str, value: str) -> str:
        key = self._blind_keys.get(tenant)
        if key is None:
            info = b"lawhub/blind/" + tenant.encode()
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
            key = self._blind_keys[tenant] = hkdf.derive(self._masters[min(self._masters)])
        digest = hmac.digest(key, value.encode(), "sha256")
        return BLIND_PREFIX + base64.b32encode(digest[:20]).decode().lower()

    # -- small values ---------------------------------------------------------

    def seal(self, tenant: str, plaintext: bytes, aad: bytes = b"") -> Sealed:
        """Encrypt ``plaintext`` for ``tenant`` under the current key version."""
        nonce = self._random(NONCE_BYTES)
        ciphertext = self._aead(tenant, self._current).encrypt(nonce, plaintext, aad)
        return Sealed(key_id(self._current), nonce + ciphertext)

    def open(self, tenant: str, kid: str, blob: bytes, aad: bytes = b"") -> bytes:
        """Decrypt what :meth:`seal` produced; raises :class:`CryptoError` subclasses."""
        aead = self._aead(tenant, parse_key_id(kid))
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise MalformedBlob(f"sealed blob of {len(blob)} bytes is too short")
        try:
            return aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise AuthenticationFailed(
                f"cannot open blob for tenant {tenant!r} with {kid}: "
                "tampered, another tenant's data, or different aad"
            ) from None

    # -- streams --------------------------------------------------------------

    def seal_stream(
        self,
        tenant: str,
        chunks: Iterable[bytes],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        aad: bytes = b"",
    ) -> Iterator[bytes]:
        """Encrypt a stream: yields the header, then one frame per ``chunk_size`` bytes."""
        if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk_size must be within 1..{MAX_CHUNK_SIZE}")
        aead = self._aead(tenant, self._current)
        prefix = self._random(STREAM_PREFIX_BYTES)
        header = _HEADER.pack(STREAM_MAGIC, self._current, chunk_size, prefix)
        return _seal_frames(aead, header, prefix, chunks, chunk_size=chunk_size, aad=aad)

    def open_stream(self, tenant: str, blobs: Iterable[bytes], aad: bytes = b"") -> Iterator[bytes]:
        """Decrypt what :meth:`seal_stream` produced, however the bytes are split."""
        return _open_frames(self, tenant, blobs, aad)


def _frame_aad(header: bytes, last: bool, aad: bytes) -> bytes:
    return header + (b"\x01" if last else b"\x00") + aad


def _frame_nonce(prefix: bytes, index: int) -> bytes:
    if index >= _MAX_FRAMES:
        raise CryptoError("stream too long: frame counter exhausted")
    return prefix + index.to_bytes(4, "big")


def _seal_frames(
    aead: AESGCM,
    header: bytes,
    prefix: bytes,
    chunks: Iterable[bytes],
    *,
    chunk_size: int,
    aad: bytes,
) -> Iterator[bytes]:
    yield header
    buffer = bytearray()
    index = 0
    for chunk in chunks:
        buffer += chunk
        # Hold back at least one byte: only the end of input says which frame is last.
        while len(buffer) > chunk_size:
            nonce = _frame_nonce(prefix, index)
            yield aead.encrypt(nonce, bytes(buffer[:chunk_size]), _frame_aad(header, False, aad))
            del buffer[:chunk_size]
            index += 1
    yield aead.encrypt(_frame_nonce(prefix, index), bytes(buffer), _frame_aad(header, True, aad))


def _open_frames(
    keyring: Keyring, tenant: str, blobs: Iterable[bytes], aad: bytes
) -> Iterator[bytes]:
    buffer = bytearray()
    source = iter(blobs)
    for blob in source:
        buffer += blob
        if len(buffer) >= _HEADER.size:
            break
    if len(buffer) < _HEADER.size:
        raise MalformedBlob("stream shorter than its header")
    header = bytes(buffer[: _HEADER.size])
    del buffer[: _HEADER.size]
    magic, version, chunk_size, prefix = _HEADER.unpack(header)
    if magic != STREAM_MAGIC:
        raise MalformedBlob("not a sealed stream (bad magic)")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise MalformedBlob(f"bad chunk size {chunk_size} in stream header")
    aead = keyring._aead(tenant, version)
    frame = chunk_size + TAG_BYTES

    def decrypt(index: int, data: bytes, last: bool) -> bytes:
        try:
            return aead.decrypt(_frame_nonce(prefix, index), data, _frame_aad(header, last, aad))
        except InvalidTag:
            raise AuthenticationFailed(
                f"stream frame {index} does not authenticate: tampered, reordered, "
                "truncated, another tenant's data, or different aad"
            ) from None

    index = 0
    for blob in itertools.chain((b"",), source):
        buffer += blob
        while len(buffer) > frame:
            yield decrypt(index, bytes(buffer[:frame]), last=False)
            del buffer[:frame]
            index += 1
    # Whatever remains was sealed as the last frame, or the stream was cut.
    if len(buffer) < TAG_BYTES:
        raise AuthenticationFailed(f"stream truncated before frame {index}")
    yield decrypt(index, bytes(buffer), last=True)
