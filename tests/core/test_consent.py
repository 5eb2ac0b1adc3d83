"""Consent keywords and transitions."""

from __future__ import annotations

import pytest

from lawhub_actors.core.consent import (
    ConsentChange,
    ConsentState,
    apply,
    keyword,
    permits_business_initiated,
    user_preference,
)

OUT, IN = ConsentChange.OPT_OUT, ConsentChange.OPT_IN


@pytest.mark.parametrize(
    "text",
    ["STOP", "stop", "Stop.", "  stop  ", "STOP!!!", "berhenti", "BERHENTI", "Berhenti.",
     "unsubscribe", "UNSUBSCRIBE!", "\"stop\"", "STOP 🙏", "\tStop\n", "ＳＴＯＰ"],
)
def test_opt_out_keywords_match_the_whole_message_in_any_case_with_punctuation(text: str) -> None:
    assert keyword(text) is OUT


@pytest.mark.parametrize("text", ["START", "start", "Resume!", "resume", "MULAI", "mulai."])
def test_opt_in_keywords_are_start_resume_and_mulai(text: str) -> None:
    assert keyword(text) is IN


@pytest.mark.parametrize(
    "text",
    ["", "   ", "...", "stop please", "please stop", "jangan stop proses saya", "stopp", "st op",
     "berhenti kerja", "START the case", "lanjut", "unsubscribed", "nonstop", "mulai besok"],
)
def test_a_keyword_inside_a_sentence_changes_nothing(text: str) -> None:
    assert keyword(text) is None


def test_user_preferences_stop_and_resume_map_to_the_same_changes() -> None:
    assert user_preference("stop") is OUT
    assert user_preference("resume") is IN
    assert user_preference("RESUME ") is IN
    assert user_preference("pause") is None


@pytest.mark.parametrize(
    ("state", "change", "new", "changed"),
    [
        (ConsentState.UNKNOWN, OUT, ConsentState.OPTED_OUT, True),
        (ConsentState.UNKNOWN, IN, ConsentState.GRANTED, True),
        (ConsentState.GRANTED, OUT, ConsentState.OPTED_OUT, True),
        (ConsentState.GRANTED, IN, ConsentState.GRANTED, False),
        (ConsentState.OPTED_OUT, IN, ConsentState.GRANTED, True),
        (ConsentState.OPTED_OUT, OUT, ConsentState.OPTED_OUT, False),
    ],
)
def test_transitions_report_whether_the_state_changed(
    state: ConsentState, change: ConsentChange, new: ConsentState, changed: bool
) -> None:
    assert apply(state, change) == (new, changed)


def test_a_repeated_stop_is_not_a_second_change() -> None:
    state, first = apply(ConsentState.GRANTED, OUT)
    state, second = apply(state, OUT)
    assert (state, first, second) == (ConsentState.OPTED_OUT, True, False)


def test_only_granted_consent_permits_business_initiated_messages() -> None:
    assert permits_business_initiated(ConsentState.GRANTED)
    assert not permits_business_initiated(ConsentState.UNKNOWN)
    assert not permits_business_initiated(ConsentState.OPTED_OUT)
