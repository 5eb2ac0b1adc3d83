"""The data dir is its owner's alone: created 0700, files 0600, and a wider
one is reported at start."""

from __future__ import annotations

import json
import os
import stat
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from lawhub_actors.core.signature import sign
from lawhub_actors.private_files import make_private
from tests import payloads
from tests.conftest import APP_SECRET, TENANT_TOKENS
from tests.e2e.outbound_helpers import Gateways, gateways  # noqa: F401 - fixture
from tests.waits import until_sync


@pytest.fixture
def restored_umask() -> Iterator[None]:
    """make_private sets the process's umask: this test's only."""
    before = os.umask(0o022)
    os.umask(before)
    yield
    os.umask(before)


def _stored(url: str, customer: str) -> bool:
    request = urllib.request.Request(f"{url}/api/v1/conversations/{customer}/messages",
                                     headers={"Authorization": f"Bearer {TENANT_TOKENS['firm-a']}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return bool(json.loads(response.read())["messages"])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_missing_data_dir_is_created_0700_and_files_made_after_are_0600(
        tmp_path: Path, restored_umask: None) -> None:
    data_dir = tmp_path / "a" / "var"
    assert make_private(data_dir) == []
    assert _mode(data_dir) == 0o700
    (data_dir / "db").write_bytes(b"x")
    (data_dir / "media").mkdir()
    assert (_mode(data_dir / "db"), _mode(data_dir / "media")) == (0o600, 0o700)


def test_an_existing_dir_or_file_open_to_others_is_reported_and_left_as_it_is(
        tmp_path: Path, restored_umask: None) -> None:
    tmp_path.chmod(0o755)
    (tmp_path / "lawhub.sqlite3").write_bytes(b"x")
    (tmp_path / "lawhub.sqlite3").chmod(0o644)
    (tmp_path / "master.key").write_bytes(b"x")
    (tmp_path / "master.key").chmod(0o600)
    found = make_private(tmp_path)
    assert [(wide.path.name, wide.mode & 0o777) for wide in found] == [
        (tmp_path.name, 0o755), ("lawhub.sqlite3", 0o644)]
    assert "-rw-r--r--" in found[1].describe()
    assert _mode(tmp_path / "lawhub.sqlite3") == 0o644


def test_the_real_process_keeps_every_file_its_owners_and_no_number_in_clear(
        tmp_path: Path, gateways: Gateways) -> None:  # noqa: F811
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)
    data_dir.chmod(0o755)
    gateway = gateways.start(data_dir)
    body = payloads.raw("text")
    request = urllib.request.Request(f"{gateway.url}/webhook", data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(APP_SECRET.encode(), body)})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    customer = payloads.load("text")["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    until_sync(lambda: _stored(gateway.url, customer), what="the message stored")
    warned = [e for e in gateway.log_events() if e.get("event") == "data_dir_not_private"]
    assert "drwxr-xr-x" in warned[0]["detail"]  # the dir; then the test's own log file, 0644
    assert [e["detail"].split("/")[-1].split(" ")[0] for e in warned[1:]] == [
        p.name for p in data_dir.glob("server-*.log")]
    made = [p for p in data_dir.rglob("*") if not p.name.startswith("server-")]  # the test's log
    assert any(p.name.endswith("-wal") for p in made)
    for path in made:
        assert _mode(path) == (0o700 if path.is_dir() else 0o600), path
    assert gateway.stop() == 0
    wamid = payloads.load("text")["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    for path in data_dir.rglob("*"):  # the log included: no client's number in clear anywhere
        if path.is_file():
            kept = path.read_bytes()
            assert customer.encode() not in kept, path
            if not path.name.endswith(".log"):  # a wamid is the number in base64: only logs
                assert wamid.encode() not in kept, path  # name messages by it (ids, by design)
