"""The application tree takes its shape and supervision flags from the config."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from lawhub_actors.adapters.databases import JOURNAL_FILE
from lawhub_actors.runtime import AppRuntime

CONFIG = """
[[tenants]]
id = "firm-a"
api_token_sha256 = "{h}"

[[tenants]]
id = "firm-b"
api_token_sha256 = "{h2}"

[supervision]
max_restarts = 7
period_s = 30.0

[supervision.overrides."inbound/sessions"]
strategy = "one_for_all"
max_restarts = 2

[supervision.overrides.root]
period_s = 5.0
""".format(h="a" * 64, h2="b" * 64)


def test_supervisors_take_their_flags_from_config_and_overrides(make_settings, secrets) -> None:
    runtime = AppRuntime(make_settings(CONFIG), secrets, publish=lambda events: None).start()
    try:
        nodes = {node.path: node for node in runtime.snapshot().walk()}
    finally:
        runtime.stop()
    assert nodes[""].info == {"strategy": "one_for_one", "max_restarts": 7, "period_s": 5.0}
    assert nodes["inbound"].info == {"strategy": "one_for_one", "max_restarts": 7, "period_s": 30.0}
    assert nodes["inbound/sessions"].info == {
        "strategy": "one_for_all", "max_restarts": 2, "period_s": 30.0,
    }
    assert nodes["inbound/sessions/firm-a"].info["size"] == 4  # [supervision.pools] default
    assert {"inbound/sessions/firm-b", "inbound/assist", "inbound/dispatcher"} <= set(nodes)


def test_readiness_follows_the_tree(settings, secrets) -> None:
    runtime = AppRuntime(settings, secrets, publish=lambda events: None)
    assert not runtime.ready()
    runtime.start()
    assert runtime.ready()
    runtime.stop()
    assert not runtime.ready()


def test_a_runtime_that_fails_halfway_through_building_closes_what_it_built(
        settings, secrets) -> None:
    """The journal cannot open (its file is a directory): the store opened
    before it is closed again — its writer thread gone, no thread left behind."""
    (secrets.data_dir / JOURNAL_FILE).mkdir(parents=True)
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(sqlite3.Error):
        AppRuntime(settings, secrets, publish=lambda events: None)
    assert {t.name for t in threading.enumerate()} - before == set()


def test_stopping_twice_stops_once(settings, secrets) -> None:
    runtime = AppRuntime(settings, secrets, publish=lambda events: None).start()
    runtime.stop()
    runtime.stop()
    assert not runtime.ready()
