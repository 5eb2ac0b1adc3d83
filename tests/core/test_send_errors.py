"""Classification of failed sends: Meta's code first, HTTP status second."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors.core import send_errors
from lawhub_actors.core.send_errors import (
    RETRY_ONCE,
    SendClass,
    classify_send,
    recipient_backoff,
)

RETRY = [1, 2, 4, 80007, 130429, 131000, 131016, 131057, 133004]
RETRY_RECIPIENT = [131056]
TERMINAL_BREAK = [0, 3, 10, 190, 200, 250, 299, 368, 131031, 131042, 131045, 131048, 133010]
TERMINAL = [
    *(100, 131008, 131009, 131021, 131026, 131047, 131049, 131050, 131051, 131053),
    *(130403, 130472, 132000, 132001, 135000),
    *(132005, 132007, 132012, 132015, 132016, 132018, 132068, 132069, 132099),  # any 1320xx
]
EXPECTED = (
    [(c, SendClass.RETRY) for c in RETRY]
    + [(c, SendClass.RETRY_RECIPIENT) for c in RETRY_RECIPIENT]
    + [(c, SendClass.TERMINAL_BREAK) for c in TERMINAL_BREAK]
    + [(c, SendClass.TERMINAL) for c in TERMINAL]
)
STATUSES = [None, 200, 400, 401, 403, 404, 429, 500, 502, 503]


@pytest.mark.parametrize(("code", "expected"), EXPECTED)
@pytest.mark.parametrize("status", STATUSES)
def test_a_known_code_decides_whatever_the_status_short_of_a_5xx(
    status: int | None, code: int, expected: SendClass
) -> None:
    if status is not None and status >= 500 and expected is SendClass.RETRY:
        expected = SendClass.UNKNOWN_OUTCOME  # Meta may have sent it: see the tests below
    assert classify_send(status, code) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, SendClass.RETRY),  # transport error / timeout: nothing reached Meta's answer
        (429, SendClass.RETRY),
        (500, SendClass.UNKNOWN_OUTCOME),  # Meta may have sent it
        (502, SendClass.UNKNOWN_OUTCOME),
        (503, SendClass.UNKNOWN_OUTCOME),
        (504, SendClass.UNKNOWN_OUTCOME),
        (400, SendClass.TERMINAL),
        (401, SendClass.TERMINAL),
        (403, SendClass.TERMINAL),
        (404, SendClass.TERMINAL),
        (413, SendClass.TERMINAL),
        (422, SendClass.TERMINAL),
        (200, SendClass.UNKNOWN_OUTCOME),  # a 200 without a message id: unreadable
        (302, SendClass.UNKNOWN_OUTCOME),
    ],
)
@pytest.mark.parametrize("code", [None, 131052, 999999, 132100, 300])  # no code / not in the table
def test_without_a_known_code_the_status_decides(
    status: int | None, code: int | None, expected: SendClass
) -> None:
    assert classify_send(status, code) is expected


def test_the_range_edges() -> None:
    assert classify_send(400, 199) is SendClass.TERMINAL  # unknown code, 4xx
    assert classify_send(500, 300) is SendClass.UNKNOWN_OUTCOME
    assert classify_send(500, 131999) is SendClass.UNKNOWN_OUTCOME
    assert classify_send(500, 132100) is SendClass.UNKNOWN_OUTCOME
    assert classify_send(500, 132099) is SendClass.TERMINAL


def test_every_code_sits_in_one_class_only() -> None:
    listed = [code for _, codes in send_errors._TABLE for code in codes]
    assert len(listed) == len(set(listed))


def test_classes_are_strings_for_the_store_and_the_feed() -> None:
    assert [c.value for c in SendClass] == [
        "retry",
        "retry_recipient",
        "terminal",
        "terminal_break",
        "unknown_outcome",
    ]
    assert SendClass.TERMINAL_BREAK == "terminal_break"


def test_code_1_is_retried_once_only() -> None:
    assert classify_send(400, 1) is SendClass.RETRY
    assert sorted(RETRY_ONCE) == [1]


def test_recipient_backoff_is_4_to_the_attempt() -> None:
    assert [recipient_backoff(n) for n in range(5)] == [1, 4, 16, 64, 256]
    assert recipient_backoff(-1) == 1.0
    assert recipient_backoff(10_000) == 4.0**64  # no overflow


@given(
    status=st.none() | st.integers(min_value=100, max_value=599),
    code=st.none() | st.integers(min_value=-1, max_value=10**7),
)
def test_every_answer_gets_a_class_and_known_codes_ignore_the_status(
    status: int | None, code: int | None
) -> None:
    cls = classify_send(status, code)
    assert isinstance(cls, SendClass)
    if code is not None and code in send_errors._CODES:
        assert cls is classify_send(None, code)
    if status is not None and 500 <= status < 600 and cls is SendClass.RETRY:
        assert code in RETRY  # a 5xx is only retried when Meta's code says so


@pytest.mark.parametrize("code", [None, 131000, 2, 130429])
def test_after_a_5xx_a_retryable_failure_is_an_unknown_outcome(code) -> None:
    assert classify_send(500, code) is SendClass.UNKNOWN_OUTCOME
    assert classify_send(503, code) is SendClass.UNKNOWN_OUTCOME


def test_a_timed_out_answer_is_an_unknown_outcome_but_a_refused_connection_retries() -> None:
    assert classify_send(None, None, timed_out=True) is SendClass.UNKNOWN_OUTCOME
    assert classify_send(None, None) is SendClass.RETRY


def test_a_terminal_code_stays_terminal_even_with_a_5xx() -> None:
    assert classify_send(500, 131026) is SendClass.TERMINAL
    assert classify_send(502, 190) is SendClass.TERMINAL_BREAK
