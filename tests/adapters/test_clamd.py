"""The clamd client against a REAL clamd (tests/servers.py), never a fake.

The clamd under test loads only our test signatures: EICAR and
``CLAMD_CUSTOM_MARKER``; it refuses streams over ``CLAMD_STREAM_MAX_BYTES``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import time
from collections.abc import Iterator

import pytest

from lawhub_actors.adapters.clamd import Clamd, ClamdError, ClamdUnavailable, ScanResult
from tests.servers import (
    CLAMD_CUSTOM_MARKER,
    CLAMD_CUSTOM_SIGNATURE,
    CLAMD_EICAR_SIGNATURE,
    CLAMD_STREAM_MAX_BYTES,
    EICAR,
    ClamdProcess,
    run_clamd,
)

TIMEOUT_S = 5.0
PDF_LIKE = (
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    b"% Surat kuasa khusus - perkara perdata No. 123/Pdt.G/2026/PN.Jkt.Sel\n"
    b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
)


@pytest.fixture
def clamd(clamd_server: str) -> Clamd:
    return Clamd(clamd_server, timeout_s=TIMEOUT_S)


def test_the_test_eicar_is_the_real_eicar() -> None:
    assert hashlib.md5(EICAR).hexdigest() == "44d88612fea8a8f36de82e1278abb02f"


# --- verdicts ------------------------------------------------------------------


def test_random_bytes_are_clean(clamd: Clamd) -> None:
    assert clamd.scan([os.urandom(4096)]) == ScanResult(clean=True, signature=None)


def test_a_pdf_like_text_is_clean(clamd: Clamd) -> None:
    assert clamd.scan([PDF_LIKE]) == ScanResult(clean=True, signature=None)


def test_an_empty_stream_is_clean(clamd: Clamd) -> None:
    assert clamd.scan([]) == ScanResult(clean=True, signature=None)


def test_empty_chunks_do_not_end_the_stream_early(clamd: Clamd) -> None:
    result = clamd.scan([b"", PDF_LIKE, b"", EICAR, b""])

    assert result == ScanResult(clean=False, signature=CLAMD_EICAR_SIGNATURE)


def test_eicar_is_found_by_name(clamd: Clamd) -> None:
    assert clamd.scan([EICAR]) == ScanResult(clean=False, signature=CLAMD_EICAR_SIGNATURE)


def test_eicar_split_across_chunks_at_an_odd_boundary_is_found(clamd: Clamd) -> None:
    chunks = [EICAR[:7], EICAR[7:37], EICAR[37:]]

    assert clamd.scan(chunks) == ScanResult(clean=False, signature=CLAMD_EICAR_SIGNATURE)


def test_eicar_split_by_a_tiny_chunk_size_is_found(clamd_server: str) -> None:
    client = Clamd(clamd_server, timeout_s=TIMEOUT_S, chunk_size=5)

    assert client.scan([EICAR]).signature == CLAMD_EICAR_SIGNATURE


def test_eicar_in_the_middle_of_a_bigger_file_is_found(clamd: Clamd) -> None:
    body = os.urandom(300_000) + EICAR + os.urandom(300_001)
    middle = 300_000 + len(EICAR) // 2
    # The 64 KiB re-chunking cuts it again elsewhere; the caller's cut is in EICAR itself.
    result = clamd.scan([body[:middle], body[middle:]])

    assert result == ScanResult(clean=False, signature=CLAMD_EICAR_SIGNATURE)


def test_our_custom_signature_is_found_with_its_name(clamd: Clamd) -> None:
    body = PDF_LIKE + b"\n% " + CLAMD_CUSTOM_MARKER + b"\n" + PDF_LIKE

    assert clamd.scan([body]) == ScanResult(clean=False, signature=CLAMD_CUSTOM_SIGNATURE)


def test_a_generator_of_chunks_is_streamed(clamd: Clamd) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield os.urandom(10_000)
        yield CLAMD_CUSTOM_MARKER

    assert clamd.scan(chunks()).signature == CLAMD_CUSTOM_SIGNATURE


def test_bytearray_and_memoryview_chunks_are_accepted(clamd: Clamd) -> None:
    result = clamd.scan([bytearray(EICAR[:20]), memoryview(EICAR)[20:]])

    assert result.signature == CLAMD_EICAR_SIGNATURE


def test_a_stream_just_under_stream_max_length_is_clean(clamd: Clamd) -> None:
    body = os.urandom(CLAMD_STREAM_MAX_BYTES - 1)

    assert clamd.scan([body]).clean


# --- not scanned -----------------------------------------------------------------


def test_a_stream_over_stream_max_length_is_unavailable_never_clean(clamd: Clamd) -> None:
    body = os.urandom(3 * 1024 * 1024)

    with pytest.raises(ClamdUnavailable, match="size limit exceeded"):
        clamd.scan([body])


def test_a_stream_over_stream_max_length_in_one_chunk_is_unavailable(clamd_server: str) -> None:
    client = Clamd(clamd_server, timeout_s=TIMEOUT_S, chunk_size=4 * 1024 * 1024)

    with pytest.raises(ClamdUnavailable):
        client.scan([os.urandom(3 * 1024 * 1024)])


def test_clamd_still_scans_after_refusing_an_oversized_stream(clamd: Clamd) -> None:
    with pytest.raises(ClamdUnavailable):
        clamd.scan([os.urandom(3 * 1024 * 1024)])

    assert clamd.scan([EICAR]).signature == CLAMD_EICAR_SIGNATURE


def test_ping_is_true_when_clamd_answers(clamd: Clamd) -> None:
    assert clamd.ping() is True


def test_ping_is_false_when_nothing_listens(clamd_down: str) -> None:
    assert Clamd(clamd_down, timeout_s=TIMEOUT_S).ping() is False


def test_ping_is_false_when_the_socket_file_is_missing(clamd_down: str) -> None:
    assert Clamd(clamd_down + ".missing", timeout_s=TIMEOUT_S).ping() is False


def test_scanning_where_nothing_listens_is_unavailable_quickly(clamd_down: str) -> None:
    client = Clamd(clamd_down, timeout_s=TIMEOUT_S)
    started = time.monotonic()

    with pytest.raises(ClamdUnavailable, match="unreachable"):
        client.scan([EICAR])

    assert time.monotonic() - started < 0.5


def test_scanning_with_no_socket_file_is_unavailable_quickly(clamd_down: str) -> None:
    client = Clamd(clamd_down + ".missing", timeout_s=TIMEOUT_S)
    started = time.monotonic()

    with pytest.raises(ClamdUnavailable, match="unreachable"):
        client.scan([PDF_LIKE])

    assert time.monotonic() - started < 0.5


def test_unavailable_is_a_clamd_error() -> None:
    assert issubclass(ClamdUnavailable, ClamdError)


def test_a_killed_clamd_is_unavailable_and_pings_false(clamd_process: ClamdProcess) -> None:
    client = Clamd(clamd_process.address, timeout_s=TIMEOUT_S)
    assert client.scan([EICAR]).signature == CLAMD_EICAR_SIGNATURE

    clamd_process.kill()

    assert client.ping() is False
    with pytest.raises(ClamdUnavailable):
        client.scan([EICAR])


def test_clamd_killed_in_the_middle_of_a_scan_is_unavailable(
    clamd_process: ClamdProcess,
) -> None:
    client = Clamd(clamd_process.address, timeout_s=TIMEOUT_S, chunk_size=16 * 1024)

    def chunks() -> Iterator[bytes]:
        yield os.urandom(64 * 1024)
        clamd_process.kill()  # clamd has the connection and part of the stream
        for _ in range(16):
            yield os.urandom(64 * 1024)

    started = time.monotonic()
    with pytest.raises(ClamdUnavailable):
        client.scan(chunks())
    assert time.monotonic() - started < TIMEOUT_S


def test_a_hung_clamd_times_out_as_unavailable(clamd_process: ClamdProcess) -> None:
    client = Clamd(clamd_process.address, timeout_s=0.3)
    os.kill(clamd_process.proc.pid, signal.SIGSTOP)  # the kernel still accepts connections
    try:
        started = time.monotonic()
        with pytest.raises(ClamdUnavailable, match="timed out"):
            client.scan([EICAR])
        assert time.monotonic() - started < 2.0
        assert client.ping() is False
    finally:
        os.kill(clamd_process.proc.pid, signal.SIGCONT)


def test_an_error_in_the_callers_chunks_propagates_unchanged(clamd: Clamd) -> None:
    def chunks() -> Iterator[bytes]:
        yield PDF_LIKE
        raise OSError("disk read failed")

    with pytest.raises(OSError, match="disk read failed") as info:
        clamd.scan(chunks())
    assert not isinstance(info.value, ClamdError)
    assert clamd.ping() is True


# --- addresses -------------------------------------------------------------------


def test_a_unix_url_address_reaches_clamd(clamd_server: str) -> None:
    client = Clamd(f"unix://{clamd_server}", timeout_s=TIMEOUT_S)

    assert client.ping() is True
    assert client.scan([EICAR]).signature == CLAMD_EICAR_SIGNATURE


def test_a_tcp_address_reaches_clamd() -> None:
    with run_clamd(tcp=True) as server:
        client = Clamd(server.address, timeout_s=TIMEOUT_S)

        assert server.address.startswith("tcp://127.0.0.1:")
        assert client.ping() is True
        assert client.scan([PDF_LIKE]).clean
        assert client.scan([CLAMD_CUSTOM_MARKER]).signature == CLAMD_CUSTOM_SIGNATURE


def test_a_tcp_port_where_nothing_listens_is_unavailable() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        client = Clamd(f"tcp://127.0.0.1:{port}", timeout_s=TIMEOUT_S)

        assert client.ping() is False
        with pytest.raises(ClamdUnavailable, match="unreachable"):
            client.scan([EICAR])


@pytest.mark.parametrize(
    "address",
    ["", "unix://", "tcp://127.0.0.1", "tcp://:3310", "tcp://host:notaport", "http://x:1"],
)
def test_a_malformed_address_is_rejected_at_construction(address: str) -> None:
    with pytest.raises(ValueError, match="address"):
        Clamd(address, timeout_s=TIMEOUT_S)


@pytest.mark.parametrize(("timeout_s", "chunk_size"), [(0, 1024), (-1, 1024), (1, 0), (1, 2**32)])
def test_bad_timeout_or_chunk_size_is_rejected(timeout_s: float, chunk_size: int) -> None:
    with pytest.raises(ValueError):
        Clamd("/nonexistent.sock", timeout_s=timeout_s, chunk_size=chunk_size)
