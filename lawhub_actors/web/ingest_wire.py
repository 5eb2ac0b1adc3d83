"""The ack path's process and the main process: what passes between them.

Over an ``AF_UNIX`` ``SOCK_SEQPACKET`` pair (message boundaries kept, each
message a kind byte and its payload, descriptors passed with
``SCM_RIGHTS``), and the child's stdin, which carries its settings and
secrets once (:func:`handover`): never its arguments or environment.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from lawhub_actors.settings import Secrets, Settings

CONNECTION = b"c"
"""child → main: one connection's file descriptor, to be served there."""
STATS = b"s"
"""child → main: webhook answers and ack latencies (JSON), for /metrics."""
READY = b"r"
"""child → main: it serves."""
COMMITTED = b"j"
"""child → main: journal entries committed up to the sequence number that follows."""
CONTROL_BYTES = 64 * 1024
"""The largest control message (a datagram is never split: none is larger)."""
STATS_PER_MESSAGE = 2_000
"""Latencies per control message (about 20 bytes each in JSON)."""
FDS_PER_MESSAGE = 4
"""Room for descriptors in one control message (one is ever sent)."""


def handover(settings: Settings, secrets: Secrets) -> bytes:
    """What the child reads on its stdin: the settings and the secrets it
    needs (the main process's own, which may have been made up in memory,
    as the demo's are): never in its arguments or environment."""
    def reveal(value: Any) -> Any:
        return None if value is None else value.get_secret_value()

    key = reveal(secrets.master_key)
    return orjson.dumps({
        "settings": settings.model_dump(mode="json"),
        "secrets": {
            "app_secret": reveal(secrets.app_secret),
            "verify_token": reveal(secrets.verify_token),
            "master_key": None if key is None else base64.b64encode(key).decode(),
            "master_key_version": secrets.master_key_version,
            "data_dir": str(secrets.data_dir),
            "database_url": reveal(secrets.database_url),  # the journal, on PostgreSQL
        },
    })


def read_handover(data: bytes) -> tuple[Settings, Secrets]:
    """What :func:`handover` wrote."""
    given = orjson.loads(data)
    mine = given["secrets"]
    secrets = Secrets.model_validate({
        **mine, "master_key": base64.b64decode(mine["master_key"]) if mine["master_key"] else None,
    })
    return Settings.model_validate(given["settings"]), secrets
