"""What a new config changes, and the keys only a restart can change."""

from __future__ import annotations

from lawhub_actors.core.config_changes import diff, keep_node_own, restart_only
from lawhub_actors.settings import parse_text
from tests.conftest import SHIPPED_CONFIG

BASE = SHIPPED_CONFIG.read_text()


def _with(extra: str, text: str = BASE):
    return parse_text(text + "\n" + extra, "new.toml")


def test_the_same_config_changes_nothing() -> None:
    assert diff(parse_text(BASE), parse_text(BASE)) == []


def test_a_changed_leaf_is_reported_with_its_dotted_key_and_both_values() -> None:
    old = parse_text(BASE)
    new = old.model_copy(update={
        "supervision": old.supervision.model_copy(update={"max_restarts": 9})})

    changes = [c.to_dict() for c in diff(old, new)]

    assert changes == [{"key": "supervision.max_restarts",
                        "from": old.supervision.max_restarts, "to": 9}]


def test_tenants_are_keyed_by_id_so_an_added_one_does_not_shift_the_others() -> None:
    old = parse_text(BASE)
    new = _with('[[tenants]]\nid = "firm-0"\napi_token_sha256 = "' + "0" * 64 + '"\n')
    assert len(new.tenants) == len(old.tenants) + 1

    keys = {c.key for c in diff(old, new)}

    assert keys and all(key.startswith("tenants.firm-0.") for key in keys)


def test_keys_read_at_start_are_refused_by_name_and_the_rest_pass() -> None:
    old = parse_text(BASE)
    new = old.model_copy(update={
        "server": old.server.model_copy(update={"port": old.server.port + 1}),
        "limits": old.limits.model_copy(update={"send_in_flight": 3, "pair_burst": 44}),
    })

    issues = restart_only(diff(old, new), "put")

    assert sorted(issue.key for issue in issues) == ["limits.send_in_flight", "server.port"]
    assert all("restart" in issue.reason for issue in issues)


def test_connection_limits_and_the_ack_priority_are_read_only_at_start() -> None:
    old = parse_text(BASE)
    new = old.model_copy(update={"server": old.server.model_copy(update={
        "max_connections": 5, "idle_timeout_s": 1.0, "headers_timeout_s": 1.0,
        "body_timeout_s": 1.0, "ingest_nice": -3}),
        "limits": old.limits.model_copy(update={"feed_send_timeout_s": 5.0})})

    issues = restart_only(diff(old, new), "put")

    assert sorted(issue.key for issue in issues) == [
        "limits.feed_send_timeout_s", "server.body_timeout_s", "server.headers_timeout_s",
        "server.idle_timeout_s", "server.ingest_nice", "server.max_connections"]


def test_another_nodes_config_keeps_this_nodes_start_only_keys_and_takes_the_rest() -> None:
    text = SHIPPED_CONFIG.read_text()
    assert "port = 8080\n" in text
    mine = parse_text(text.replace("port = 8080\n", "port = 8101\n", 1)
                      + "\n[limits]\nclamd_socket = '/run/mine.sock'\n")
    theirs = parse_text(text.replace("port = 8080\n", "port = 8102\n", 1)
                        + "\n[limits]\nclamd_socket = '/run/theirs.sock'\ndedupe_ttl_s = 99\n"
                        + "\n[inbound]\nbatch_max = 17\n")
    merged = keep_node_own(mine, theirs)
    assert [c.key for c in diff(mine, merged)] == ["inbound.batch_max"]
    assert (merged.server.port, merged.limits.clamd_socket) == (8101, "/run/mine.sock")
