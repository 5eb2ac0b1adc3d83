"""Small, real media files made in code: a JPEG photo and a one-page PDF.

Real means any viewer opens them, not just that the magic bytes are right:
the console and ``GET /api/v1/media/{ref}`` show what a client sent. Both
stay a few KB so the demo can send them all day.

The JPEG is a baseline JFIF in YCbCr without subsampling whose 8x8 blocks
are each one flat colour, so only DC coefficients are coded (every block's
AC part is an immediate end-of-block): the encoder is a few lines instead
of a DCT.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence

__all__ = ["document_photo", "jpeg", "pdf"]

Rgb = tuple[int, int, int]

_QUANT = 8  # every entry: a flat block's DC coefficient is 8 * (mean - 128)
# The standard DC table (JPEG Annex K.3): code lengths 1..16, then the categories.
_DC_COUNTS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_SYMBOLS = tuple(range(12))
# An AC table with one symbol, end-of-block, coded as the single bit 0.
_AC_COUNTS = (1, *([0] * 15))
_AC_SYMBOLS = (0x00,)


def jpeg(blocks: Sequence[Sequence[Rgb]]) -> bytes:
    """A JPEG of ``len(blocks[0]) * 8`` by ``len(blocks) * 8`` pixels, each block of
    8x8 pixels the colour given for it (rows top to bottom)."""
    height, width = len(blocks) * 8, len(blocks[0]) * 8
    components = b"".join(bytes((ident, 0x11, 0)) for ident in (1, 2, 3))
    tables = (
        bytes((0x00, *_DC_COUNTS, *_DC_SYMBOLS)) + bytes((0x10, *_AC_COUNTS, *_AC_SYMBOLS))
    )
    header = b"".join((
        b"\xff\xd8",
        _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        _segment(0xDB, bytes((0,)) + bytes([_QUANT] * 64)),
        _segment(0xC0, struct.pack(">BHHB", 8, height, width, 3) + components),
        _segment(0xC4, tables),
        _segment(0xDA, bytes((3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0))),
    ))
    return header + _scan(blocks) + b"\xff\xd9"


def document_photo(rng: random.Random, columns: int = 16, rows: int = 20) -> bytes:
    """A photo of a letter on a desk: a sheet with lines of text and a stamp, varied by
    ``rng`` so no two are the same file."""
    desk: Rgb = (rng.randint(90, 140), rng.randint(60, 90), rng.randint(40, 60))
    paper: Rgb = (245, 242, rng.randint(225, 240))
    ink: Rgb = (70, 70, 80)
    stamp_at = (rng.randint(6, columns - 3), rng.randint(rows - 5, rows - 3))
    grid: list[list[Rgb]] = []
    for y in range(rows):
        row: list[Rgb] = []
        for x in range(columns):
            on_sheet = 1 <= x < columns - 1 and 1 <= y < rows - 1
            if not on_sheet:
                row.append(desk)
            elif (x, y) == stamp_at:
                row.append((40, 60, 170))
            elif y % 2 == 1 and 2 <= x < columns - 2 - (y * 7 % 3) and 2 < y < rows - 5:
                row.append(ink)
            else:
                row.append(paper)
        grid.append(row)
    return jpeg(grid)


def pdf(lines: Sequence[str], *, comment: bytes = b"") -> bytes:
    """A one-page A4 PDF showing ``lines`` (ASCII) in Helvetica. ``comment`` goes into a
    PDF comment after the header (how the demo hides its EICAR test string in a PDF)."""
    text = ["BT /F1 13 Tf 72 770 Td 18 TL"]
    text += [f"({_pdf_escape(line)}) '" for line in lines]
    stream = "\n".join([*text, "ET"]).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    if comment:
        out += b"%" + comment.replace(b"\n", b" ") + b"\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref
    )
    return bytes(out)


def _pdf_escape(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def _codes(counts: Sequence[int], symbols: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Canonical Huffman codes: symbol -> (code, length)."""
    codes: dict[int, tuple[int, int]] = {}
    code, index = 0, 0
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            codes[symbols[index]] = (code, length)
            code, index = code + 1, index + 1
        code <<= 1
    return codes


_DC_CODES = _codes(_DC_COUNTS, _DC_SYMBOLS)
_EOB = _codes(_AC_COUNTS, _AC_SYMBOLS)[0x00]


def _ycbcr(rgb: Rgb) -> tuple[float, float, float]:
    r, g, b = rgb
    return (
        0.299 * r + 0.587 * g + 0.114 * b,
        128 - 0.168736 * r - 0.331264 * g + 0.5 * b,
        128 + 0.5 * r - 0.418688 * g - 0.081312 * b,
    )


def _scan(blocks: Sequence[Sequence[Rgb]]) -> bytes:
    """The entropy-coded data: per block, Y then Cb then Cr, each a DC difference
    (category code, then its bits) and an end-of-block."""
    bits = _BitWriter()
    previous = [0, 0, 0]
    for row in blocks:
        for colour in row:
            for channel, value in enumerate(_ycbcr(colour)):
                dc = max(-128, min(127, round(value - 128)))  # 8 * (mean - 128) / _QUANT
                diff, previous[channel] = dc - previous[channel], dc
                category = abs(diff).bit_length()
                bits.write(*_DC_CODES[category])
                if category:
                    bits.write(diff if diff > 0 else diff + (1 << category) - 1, category)
                bits.write(*_EOB)
    return bits.flush()


class _BitWriter:
    """MSB-first bits into bytes, a 0x00 stuffed after every 0xFF, padded with 1s."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._count = 0

    def write(self, value: int, length: int) -> None:
        self._acc = (self._acc << length) | (value & ((1 << length) - 1))
        self._count += length
        while self._count >= 8:
            self._count -= 8
            byte = (self._acc >> self._count) & 0xFF
            self._out.append(byte)
            if byte == 0xFF:
                self._out.append(0x00)
        self._acc &= (1 << self._count) - 1

    def flush(self) -> bytes:
        if self._count:
            self.write((1 << (8 - self._count)) - 1, 8 - self._count)
        return bytes(self._out)
