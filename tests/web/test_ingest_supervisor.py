"""Supervising the ack path's process (lawhub_actors.web.ingest_supervisor)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

from lawhub_actors.settings import Secrets, load
from lawhub_actors.web import ingest_supervisor
from lawhub_actors.web.ingest_wire import handover
from tests.conftest import REPO, SHIPPED_CONFIG


async def test_a_child_that_keeps_failing_to_start_is_retried_then_given_up(
    tmp_path, monkeypatch,
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setattr(ingest_supervisor, "RESTART_PAUSE_S", 0.05)
    monkeypatch.setattr(ingest_supervisor, "RESTART_LIMIT", 2)
    secrets = Secrets(app_secret="s", verify_token="v", master_key=bytes(range(32)),
                      data_dir=tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))
    gave_up: list[str] = []
    process = ingest_supervisor.IngestProcess(
        handover(load(SHIPPED_CONFIG), secrets), listener,
        take=lambda sock: sock.close(), count=lambda *figures: None,
        committed=lambda seq: None, give_up=gave_up.append)
    await process.start()
    first = process.pid
    assert first is not None
    process._handover = b"{}"  # every later child fails before it serves
    os.kill(first, signal.SIGKILL)
    for _ in range(600):
        if gave_up:
            break
        await asyncio.sleep(0.05)
    assert gave_up == ["the ingest process failed 2 times in a row"]
    assert process.restarts == 3
    await process.stop(5)
