"""Template sends are checked against the tenant's approved templates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lawhub_actors.core.templates import (
    TemplateRefusal,
    TemplateSpec,
    check_template,
    param_problem,
)

HEARING = TemplateSpec("firm-a", "hearing_reminder", "id", "UTILITY", "approved", 2)
HEARING_EN = TemplateSpec("firm-a", "hearing_reminder", "en_US", "UTILITY", "APPROVED", 2)
PROMO = TemplateSpec("firm-a", "promo", "id", "MARKETING", "paused", 1)
OTHER_FIRM = TemplateSpec("firm-b", "fee_notice", "id", "UTILITY", "approved", 1)
TEMPLATES = (HEARING, HEARING_EN, PROMO, OTHER_FIRM)


def _refusal(*args: object) -> TemplateRefusal:
    with pytest.raises(TemplateRefusal) as info:
        check_template(TEMPLATES, *args)  # type: ignore[arg-type]
    return info.value


def test_an_approved_template_with_good_params_is_returned() -> None:
    assert (
        check_template(TEMPLATES, "firm-a", "hearing_reminder", "id", ["Budi", "Senin"]) == HEARING
    )
    assert (
        check_template(iter(TEMPLATES), "firm-a", "hearing_reminder", "en_US", ["a", "b"])
        == HEARING_EN
    )


@pytest.mark.parametrize(
    ("tenant", "name", "language"),
    [
        ("firm-a", "no_such", "id"),
        ("firm-a", "hearing_reminder", "fr"),  # exists, not in that language
        ("firm-a", "Hearing_Reminder", "id"),  # names compare exactly
        ("firm-a", "fee_notice", "id"),  # another tenant's template
        ("firm-c", "hearing_reminder", "id"),
    ],
)
def test_unknown_template(tenant: str, name: str, language: str) -> None:
    refusal = _refusal(tenant, name, language, ["x"])
    assert refusal.code == "unknown_template"
    assert "firm-b" not in refusal.message


@pytest.mark.parametrize("status", ["pending", "REJECTED", "paused", "disabled", "in_appeal"])
def test_not_approved_names_the_status(status: str) -> None:
    spec = TemplateSpec("firm-a", "t", "id", "UTILITY", status, 0)
    with pytest.raises(TemplateRefusal) as info:
        check_template([spec], "firm-a", "t", "id", [])
    assert info.value.code == "template_not_approved"
    assert status.lower() in info.value.message


def test_an_approved_duplicate_wins_over_a_paused_one_in_any_order() -> None:
    paused = TemplateSpec("firm-a", "t", "id", "UTILITY", "paused", 1)
    approved = TemplateSpec("firm-a", "t", "id", "UTILITY", "approved", 1)
    assert check_template([paused, approved], "firm-a", "t", "id", ["x"]) == approved
    assert check_template([approved, paused], "firm-a", "t", "id", ["x"]) == approved


@pytest.mark.parametrize("params", [[], ["one"], ["a", "b", "c"]])
def test_wrong_param_count(params: list[str]) -> None:
    refusal = _refusal("firm-a", "hearing_reminder", "id", params)
    assert refusal.code == "wrong_param_count"
    assert f"got {len(params)}" in refusal.message


def test_status_is_checked_before_params() -> None:
    assert _refusal("firm-a", "promo", "id", []).code == "template_not_approved"


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Budi\nSantoso", "newline"),
        ("Jl. Merdeka\r5", "newline"),
        ("Rp\t500", "tab"),
        ("Pasal     378", "4 consecutive spaces"),
    ],
)
def test_invalid_param_names_its_index_and_never_its_content(second: str, problem: str) -> None:
    refusal = _refusal("firm-a", "hearing_reminder", "id", ["NIK 3171234567890001", second])
    assert refusal.code == "invalid_param"
    assert refusal.index == 2
    assert "{{2}}" in refusal.message and problem in refusal.message
    for content in ("3171", "Budi", "Santoso", "Merdeka", "Rp", "500", "Pasal", "378"):
        assert content not in str(refusal)


def test_the_first_bad_param_is_reported() -> None:
    refusal = _refusal("firm-a", "hearing_reminder", "id", ["\t", ""])
    assert (refusal.code, refusal.index) == ("invalid_param", 1)


@pytest.mark.parametrize(
    "value", ["Budi", " padded ", "four    spaces", "Rp 1.000.000", "é ünïcode 😀", "a  b   c    d"]
)
def test_acceptable_params(value: str) -> None:
    assert param_problem(value) is None


def test_refusal_is_an_exception_with_code_and_message() -> None:
    refusal = TemplateRefusal("unknown_template", "no template 'x'")
    assert isinstance(refusal, Exception)
    assert (refusal.code, refusal.message, refusal.index) == (
        "unknown_template",
        "no template 'x'",
        None,
    )
    assert str(refusal) == "unknown_template: no template 'x'"


@given(value=st.text(max_size=40))
def test_a_param_passes_exactly_when_meta_would_accept_it(value: str) -> None:
    bad = not value.strip() or any(c in value for c in "\n\r\t") or "     " in value
    assert (param_problem(value) is not None) == bad


@given(secret=st.text(alphabet="abcdefghij0123456789", min_size=6, max_size=20))
def test_a_refusal_never_echoes_a_parameter(secret: str) -> None:
    with pytest.raises(TemplateRefusal) as info:
        check_template(TEMPLATES, "firm-a", "hearing_reminder", "id", [secret, secret + "\n"])
    assert secret not in str(info.value)
