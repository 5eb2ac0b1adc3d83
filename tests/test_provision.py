"""Secrets made for a newcomer: written whole, private, and one value even
when several nodes on one data dir make it at the same moment."""

from __future__ import annotations

import threading
from pathlib import Path

from lawhub_actors import provision


def test_nodes_making_a_secret_at_once_all_read_the_one_that_was_written(tmp_path: Path) -> None:
    path = tmp_path / "admin.token"
    gate = threading.Barrier(8)
    got: list[str] = []

    def node(n: int) -> None:
        gate.wait()
        got.append(provision._read_or_create(path, lambda: f"token-{n}", "LAWHUB_ADMIN_TOKEN"))

    threads = [threading.Thread(target=node, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(got) == 8 and len(set(got)) == 1
    assert path.read_text() == got[0] + "\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["admin.token"]  # no draft left
