"""The shape limits: nesting depth, plausible timestamps, storable integers."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lawhub_actors.core.limits import (
    INT64_MAX,
    INT64_MIN,
    MAX_DEPTH,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
    non_negative_int,
    parser_depth_exceeded,
    plausible_timestamp,
    storable_int,
    too_deep,
)
from tests.payloads import names, raw


def nested(depth: int, leaf: object = 1) -> object:
    """``depth`` levels of alternating arrays and objects around ``leaf``."""
    node = leaf
    for level in range(depth):
        node = [node] if level % 2 else {"k": node}
    return node


def depth_of(node: object) -> int:
    if isinstance(node, dict):
        return 1 + max(map(depth_of, node.values()), default=0)
    if isinstance(node, list):
        return 1 + max(map(depth_of, node), default=0)
    return 0


@pytest.mark.parametrize(("depth", "deep"), [
    (0, False), (1, False), (MAX_DEPTH - 1, False), (MAX_DEPTH, False),
    (MAX_DEPTH + 1, True), (300, True),
])
def test_a_document_is_too_deep_only_past_the_limit(depth: int, deep: bool) -> None:
    document = nested(depth)
    assert too_deep(document) is deep
    assert too_deep(document, json.dumps(document).encode()) is deep  # orjson stops at 254


def test_the_limit_counts_containers_not_scalars() -> None:
    assert not too_deep(nested(MAX_DEPTH, leaf="[[[[{{{{"))
    assert not too_deep([[]] * 1000)
    assert too_deep([1, 2, {"a": [3, nested(MAX_DEPTH)]}])


def test_a_walk_far_past_the_recursion_limit_needs_no_recursion() -> None:
    document: list[object] = []
    for _ in range(100_000):
        document = [document]
    assert too_deep(document)


def test_few_brackets_in_the_raw_body_skip_the_walk() -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    walked = [[[[]]]]  # would not matter: the bytes prove the body is shallow
    assert not too_deep(walked, body, limit=2)


@pytest.mark.parametrize("name", names())
def test_every_meta_shaped_fixture_is_well_inside_the_limit(name: str) -> None:
    document = orjson.loads(raw(name))
    assert depth_of(document) <= 12
    assert not too_deep(document, raw(name))


@settings(max_examples=200, deadline=None)
@given(st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3),
    max_leaves=40,
), st.integers(0, 12))
def test_too_deep_agrees_with_a_recursive_depth(document: object, limit: int) -> None:
    expected = depth_of(document) > limit
    assert too_deep(document, limit=limit) is expected
    assert too_deep(document, json.dumps(document).encode(), limit=limit) is expected


def test_orjsons_own_depth_refusal_is_recognised() -> None:
    with pytest.raises(orjson.JSONDecodeError) as deep:
        orjson.loads(b"[" * 100_000 + b"]" * 100_000)
    assert parser_depth_exceeded(deep.value)
    with pytest.raises(orjson.JSONDecodeError) as broken:
        orjson.loads(b"[[[")
    assert not parser_depth_exceeded(broken.value)


@pytest.mark.parametrize(("seconds", "plausible"), [
    (TIMESTAMP_MIN - 1, False), (TIMESTAMP_MIN, True), (1_700_000_000, True),
    (TIMESTAMP_MAX - 1, True), (TIMESTAMP_MAX, False), (0, False), (-1, False),
    (1_700_000_000_000, False),  # milliseconds
    (2**63, False), (10**400, False),
])
def test_plausible_timestamps_lie_between_2009_and_2100(seconds: int, plausible: bool) -> None:
    assert plausible_timestamp(seconds) is plausible


def test_storable_integers_are_sqlites() -> None:
    assert storable_int(INT64_MAX) and storable_int(INT64_MIN)
    assert not storable_int(INT64_MAX + 1) and not storable_int(INT64_MIN - 1)


@given(st.text(max_size=30))
def test_non_negative_int_takes_only_ascii_digits_within_int64(text: str) -> None:
    value = non_negative_int(text)
    if value is None:
        assert not (text.isascii() and text.isdigit()) or int(text) > INT64_MAX
    else:
        assert text.isascii() and text.isdigit() and value == int(text) <= INT64_MAX


def test_non_negative_int_refuses_what_python_would_read_as_a_number() -> None:
    for text in ("\u00b2", "\u0661\u0662", "\uff11", " 1", "1 ", "+5", "1_000", "-1", "1e3",
                 str(2**63), "9" * 400, ""):
        assert non_negative_int(text) is None, text
    assert non_negative_int(str(2**63 - 1)) == 2**63 - 1
    assert non_negative_int("007") == 7
