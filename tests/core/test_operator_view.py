"""Operators see a quarantined entry's ids, types, sizes and reasons — never
a client's words, name or number."""

from __future__ import annotations

import orjson
from hypothesis import assume, given
from hypothesis import strategies as st

from lawhub_actors.core.operator_view import for_operators
from tests.payloads import load


def _quarantined_change() -> dict:
    return {"waba_id": "102290129349999", "field": "messages",
            "change": load("unknown_phone_number")["entry"][0]["changes"][0]}


def test_a_change_shows_its_messages_by_id_type_and_size_only() -> None:
    view = for_operators(_quarantined_change())
    assert view["waba_id"] == "102290129349999" and view["field"] == "messages"
    change = view["change"]
    assert change["phone_number_id"] == "109999999999999" and change["field"] == "messages"
    [message] = change["messages"]
    assert message["id"].startswith("wamid.") and message["type"] == "text"
    assert message["timestamp"] == "1767261640" and message["bytes"] > 0
    assert change["contacts"] == 1


def test_no_text_name_or_number_of_the_client_is_shown() -> None:
    shown = orjson.dumps(for_operators(_quarantined_change())).decode()
    for private in ("Halo?", "Siti Nurhaliza", "6281234500002", "15550009999"):
        assert private not in shown


def test_ids_are_shown_as_they_are_and_an_exception_by_its_name_only() -> None:
    data = {"dedupe_key": "wamid.poison", "index": 3,
            "error": "ValueError: invalid literal for int() with base 10: 'Halo, Ibu Siti'"}
    assert for_operators(data) == {"dedupe_key": "wamid.poison", "index": 3,
                                   "error": "ValueError"}


def test_an_error_of_ours_without_an_exception_name_is_shown_whole() -> None:
    assert for_operators({"error": "the body is not a JSON object"}) == {
        "error": "the body is not a JSON object"}


def test_anything_else_is_replaced_by_its_kind_and_size() -> None:
    view = for_operators({"error": {"nested": "Halo?"}, "extra": ["Halo?"], "change": "x"})
    assert view == {"error": {"kind": "dict", "bytes": 18}, "extra": {"kind": "list", "bytes": 9},
                    "change": {"kind": "str", "bytes": 3}}


def test_statuses_show_their_id_and_status() -> None:
    change = load("status_failed")["entry"][0]["changes"][0]
    [status] = for_operators({"change": change})["change"]["statuses"]
    assert set(status) <= {"id", "status", "timestamp", "bytes"} and status["status"] == "failed"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=6), st.text(min_size=12))
def test_a_secret_word_anywhere_outside_the_kept_keys_never_shows(data: dict, word: str) -> None:
    assume(not any(word in key for key in data))  # keys are Meta's field names, shown
    data = {**data, "change": {"value": {"messages": [{"text": {"body": word}}],
                                         "contacts": [{"profile": {"name": word}}]}}}
    kept = {k: v for k, v in data.items() if k in {"error", "field", "waba_id", "tenant",
                                                   "index", "dedupe_key", "unstorable"}}
    # (an error without an exception's name is ours, shown whole: the kept keys)
    shown = for_operators(data)
    assert word not in orjson.dumps({k: v for k, v in shown.items() if k not in kept}).decode()
