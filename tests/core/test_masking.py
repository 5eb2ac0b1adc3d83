"""PII masking: examples per kind, and properties over generated messages."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lawhub_actors.core.masking import MaskedText, PiiKind, is_nik, mask
from lawhub_actors.core.masking import kinds as masking_kinds
from lawhub_actors.core.masking import masked as masking_masked
from lawhub_actors.core.masking import names as masking_names
from lawhub_actors.core.masking import numbers as masking_numbers
from lawhub_actors.core.masking import text as masking_text

# -- examples -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("HP saya 0812-3456-7890", "HP saya [PHONE]"),
        ("hubungi +62 812 3456 7890 ya", "hubungi [PHONE] ya"),
        ("wa 6281234567890", "wa [PHONE]"),
        ("nomor 0812.3456.789", "nomor [PHONE]"),
        ("kantor (021) 555-1234", "kantor [PHONE]"),
        ("call +44 20 7946 0958 or +1-202-555-0143", "call [PHONE] or [PHONE]"),
        ("HP081234567890", "HP[PHONE]"),
        ("email budi.s+law@gmail.com.", "email [EMAIL]."),
        ("kirim ke 081234567890@mail.co.id", "kirim ke [EMAIL]"),
        ("NIK saya 3174054501900001", "NIK saya [NIK]"),
        ("3174 0545 0190 0001 itu KTP saya", "[NIK] itu KTP saya"),
        ("NPWP 01.234.567.8-901.234", "NPWP [NPWP]"),
        ("npwp 012345678901234", "npwp [NPWP]"),
        ("NPWP badan 0012345678901234", "NPWP badan [NPWP]"),
        ("no rek BCA 1234567890 a.n. Budi", "no rek BCA [ACCOUNT] a.n. Budi"),
        ("Mandiri: 123-00-1234567-8", "Mandiri: [ACCOUNT]"),
        ("transfer ke 0812345678 (BRI)", "transfer ke [ACCOUNT] (BRI)"),
        ("kode 98765432101", "kode [ACCOUNT]"),
        ("jam 9 0812 3456 7890 besok", "jam 9 [PHONE] besok"),
        ("0812345678 0812345679", "[PHONE] [PHONE]"),
        ("sidang 05-12-2024 10.00 di PN Jakarta Selatan", "sidang 05-12-2024 10.00 di PN Jakarta Selatan"),
        ("Pasal 378 KUHP, tahun 2019, perkara 123/Pdt.G/2024", "Pasal 378 KUHP, tahun 2019, perkara 123/Pdt.G/2024"),
        ("hutang Rp 50.000.000 ke pinjol", "hutang Rp 50.000.000 ke pinjol"),
        ("hutang Rp 1.500.000.000", "hutang Rp [ACCOUNT]"),  # big amounts are over-masked
        ("０８１２３４５６７８９０", "[PHONE]"),  # full-width digits
        ("0812\u200b3456\u200b7890", "[PHONE]"),  # zero-width spaces
    ],
)
def test_each_kind_of_personal_data_becomes_its_placeholder(text: str, expected: str) -> None:
    assert mask(text).text == expected


def test_counts_say_how_many_of_each_kind_were_masked() -> None:
    masked = mask(
        "Saya Budi, HP 081234567890 / 081298765432, NIK 3174054501900001, budi@x.id",
        names=["Budi"],
    )
    assert masked.counts[PiiKind.PHONE] == 2
    assert masked.counts[PiiKind.NIK] == 1
    assert masked.counts[PiiKind.EMAIL] == 1
    assert masked.counts[PiiKind.NAME] == 1
    assert masked.counts[PiiKind.ACCOUNT] == 0
    assert masked.total == 5


def test_profile_names_are_masked_whole_and_by_word_case_insensitively() -> None:
    masked = mask(
        "Budi Santoso di sini. budi ingin tanya, SANTOSO juga. Budiman bukan saya.",
        names=["Budi Santoso"],
    )
    assert masked.text == "[NAME] di sini. [NAME] ingin tanya, [NAME] juga. Budiman bukan saya."
    assert masked.counts[PiiKind.NAME] == 3


def test_honorifics_and_short_name_words_are_not_masked_on_their_own() -> None:
    masked = mask("Ibu saya dan Al datang, Ibu Sari juga, Al Amin", names=["Ibu Sari", "Al Amin"])
    assert masked.text == "Ibu saya dan Al datang, [NAME] juga, [NAME]"


def test_a_whole_profile_name_is_masked_even_when_short() -> None:
    assert mask("Al sudah datang", names=["Al"]).text == "[NAME] sudah datang"


def test_a_name_equal_to_a_placeholder_word_does_not_touch_placeholders() -> None:
    masked = mask("email me at a@b.co, Email", names=["Email"])
    assert masked.text == "[NAME] me at [EMAIL], [NAME]"
    assert mask(masked.text, names=["Email"]).text == masked.text


def test_the_only_way_to_make_masked_text_is_mask() -> None:
    with pytest.raises(TypeError, match="mask"):
        MaskedText("raw 081234567890", {})
    masked = mask("x")
    with pytest.raises(AttributeError):
        masked._text = "raw"  # type: ignore[misc]
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(masked)
    import copy

    assert copy.deepcopy(masked) is masked


def test_the_repr_of_masked_text_carries_no_body() -> None:
    masked = mask("suami saya ditangkap, HP 081234567890")
    assert "suami" not in repr(masked) and "phone" in repr(masked)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [
        ("3174054501900001", True),  # DKI, woman born 05-01-1990
        ("3174050501900001", True),  # man
        ("1101010101000001", True),
        ("0074054501900001", False),  # no province 00
        ("3100054501900001", False),  # regency 00
        ("3174053201900001", False),  # day 32
        ("3174057201900001", False),  # day 72 (women: 41..71)
        ("3174054513900001", False),  # month 13
        ("3174054501900000", False),  # sequence 0000
        ("317405450190000", False),  # 15 digits
    ],
)
def test_nik_structure(digits: str, valid: bool) -> None:
    assert is_nik(digits) is valid


# -- generated personal data -----------------------------------------------------

WORDS = ["saya", "suami", "istri", "ditangkap", "polisi", "tadi", "malam", "sidang", "cerai", "besok", "tolong", "pak", "bu", "hutang", "pinjol", "tanah", "warisan", "kontrak", "dipecat", "tanpa", "pesangon", "kantor", "nomor", "di", "ke", "dan", "yang", "ini", "itu", "please", "help", "my", "husband", "was", "arrested", "I", "fired", "without", "severance", "the", "court", "date", "tomorrow", "number", "account", "rekening", "NIK", "NPWP", "HP", "email", "Rp"]
NUMBER_WORDS = ("jam 9", "tanggal 12", "tahun 2024", "pukul 10.00", "pasal 378", "lantai 3")

_digit = st.sampled_from("0123456789")


def _digits(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.text(_digit, min_size=min_size, max_size=max_size)


@st.composite
def formatted(draw: st.DrawFn, digits: str) -> str:
    """Digits grouped the way people type them, one separator style per number."""
    sep = draw(st.sampled_from(["", " ", "-", ".", " - "]))
    if not sep:
        return digits
    parts, rest = [], digits
    while rest:
        size = draw(st.integers(min_value=2, max_value=5))
        parts.append(rest[:size])
        rest = rest[size:]
    return sep.join(parts)


@st.composite
def indonesian_phones(draw: st.DrawFn) -> tuple[str, str]:
    national = "8" + draw(_digits(8, 10))
    prefix = draw(st.sampled_from(["+62", "62", "0", "+62 ", "+62-"]))
    shown = prefix + draw(formatted(national))
    return shown, ("62" if "62" in prefix else "0") + national


@st.composite
def e164_phones(draw: st.DrawFn) -> tuple[str, str]:
    country = draw(st.sampled_from(["1", "44", "65", "60", "61", "852", "971", "31"]))
    total = draw(st.integers(min_value=max(8, len(country) + 6), max_value=15))
    rest = draw(st.sampled_from("123456789")) + draw(_digits(total - len(country) - 1, total - len(country) - 1))
    return "+" + country + " " + draw(formatted(rest)), country + rest


@st.composite
def niks(draw: st.DrawFn) -> tuple[str, str]:
    province = draw(st.sampled_from([11, 12, 13, 31, 32, 33, 34, 35, 36, 51, 62, 73, 94]))
    regency, district = draw(st.integers(1, 99)), draw(st.integers(1, 99))
    day = draw(st.integers(1, 31)) + draw(st.sampled_from([0, 40]))
    month, year, seq = draw(st.integers(1, 12)), draw(st.integers(0, 99)), draw(st.integers(1, 9999))
    digits = f"{province:02}{regency:02}{district:02}{day:02}{month:02}{year:02}{seq:04}"
    assert is_nik(digits)
    style = draw(st.sampled_from(["plain", "spaced", "dotted"]))
    if style == "spaced":
        return " ".join(digits[i : i + 4] for i in range(0, 16, 4)), digits
    if style == "dotted":
        return f"{digits[:2]}.{digits[2:4]}.{digits[4:6]}.{digits[6:12]}.{digits[12:]}", digits
    return digits, digits


@st.composite
def npwps(draw: st.DrawFn) -> tuple[str, str]:
    digits = draw(_digits(15, 15))
    style = draw(st.sampled_from(["formatted", "plain", "new-entity"]))
    if style == "formatted":
        d = digits
        return f"{d[:2]}.{d[2:5]}.{d[5:8]}.{d[8]}-{d[9:12]}.{d[12:]}", digits
    if style == "new-entity":
        return "0" + digits, "0" + digits
    return digits, digits


@st.composite
def accounts(draw: st.DrawFn) -> tuple[str, str]:
    digits = draw(_digits(10, 16))
    shown = draw(formatted(digits))
    context = draw(st.sampled_from(["", "no rek BCA ", "rekening Mandiri: ", "acc ", "BRI "]))
    suffix = draw(st.sampled_from(["", " a.n. Bapak", " (BNI)"]))
    return context + shown + suffix, digits


NAMES = ["Budi Santoso", "Siti Nurhaliza", "Agus", "Dewi Lestari", "I Made Wirawan",
         "Muhammad Rizky Pratama", "Ni Luh Putu Ayu", "Joko", "Andi Nur'aini", "Hendra Wijaya"]
names_strategy = st.one_of(
    st.sampled_from(NAMES),
    st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=3, max_size=10),
)

numeric_pii = st.one_of(indonesian_phones(), e164_phones(), niks(), npwps(), accounts())
GLUE = ["", " ", ", ", ": ", " (", ") ", ". "]


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, list[str], list[str], list[str]]:
    """A message with personal data embedded; returns (text, pii digits, emails, names)."""
    name = draw(names_strategy)
    parts: list[str] = []
    digit_strings: list[str] = []
    emails: list[str] = []
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        choice = draw(st.sampled_from(["word", "word", "number", "pii", "email", "name"]))
        if choice == "word":
            parts.append(draw(st.sampled_from(WORDS)))
        elif choice == "number":
            parts.append(draw(st.sampled_from(NUMBER_WORDS)))
        elif choice == "pii":
            shown, digits = draw(numeric_pii)
            parts.append(shown)
            digit_strings.append(digits)
        elif choice == "email":
            email = draw(st.emails())
            parts.append(email)
            emails.append(email)
        else:
            parts.append(draw(st.sampled_from([name, name.upper(), name.lower()])))
    text, previous = "", ""
    for part in parts:
        # Text glued to an address with no separator is ambiguous even to a reader.
        glues = GLUE[1:] if "@" in part or "@" in previous else GLUE
        glue = draw(st.sampled_from(glues)) if text else ""
        text += glue + part
        previous = part
    return text, digit_strings, emails, [name]


_NUMBER_SPAN = re.compile(r"\d+(?:[ \t.\-/()]{1,3}\d+)*")
_PLACEHOLDERS = re.compile(r"\[(?:PHONE|EMAIL|NIK|NPWP|ACCOUNT|NAME)\]")


def surviving_digit_runs(text: str) -> list[str]:
    return [re.sub(r"\D", "", m.group()) for m in _NUMBER_SPAN.finditer(text)]


def name_words(name: str) -> list[str]:
    honorifics = {"bapak", "ibu", "mas", "mbak"}
    words = [w.strip(".,'") for w in name.split()]
    return [w for w in words if sum(c.isalpha() for c in w) >= 3 and w.lower() not in honorifics]


@given(message=messages())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@example(message=("jam 9 0812 3456 7890", ["081234567890"], [], ["Agus"]))
@example(message=("tahun 2024 3174 0545 0190 0001", ["3174054501900001"], [], ["Agus"]))
def test_generated_personal_data_never_survives_masking(
    message: tuple[str, list[str], list[str], list[str]],
) -> None:
    text, digit_strings, emails, names = message
    masked = mask(text, names=names).text
    runs = surviving_digit_runs(masked)
    for digits in digit_strings:
        for i in range(len(digits) - 7):
            window = digits[i : i + 8]
            assert not any(window in run for run in runs), (window, masked)
    for email in emails:
        assert email not in masked
    assert "@" not in masked
    visible = _PLACEHOLDERS.sub(" ", masked)
    for name in names:
        for word in name_words(name):
            assert not re.search(rf"(?<![^\W\d_]){re.escape(word)}(?![^\W\d_])", visible, re.I), (
                word,
                masked,
            )


@given(message=messages())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_masking_is_idempotent_on_messages(
    message: tuple[str, list[str], list[str], list[str]],
) -> None:
    text, _, _, names = message
    once = mask(text, names=names).text
    assert mask(once, names=names).text == once
    assert mask(once).text == once


@given(text=st.text(max_size=200), names=st.lists(st.text(max_size=12), max_size=3))
@settings(max_examples=400)
def test_masking_is_idempotent_on_any_text(text: str, names: list[str]) -> None:
    once = mask(text, names=names).text
    assert mask(once, names=names).text == once


@given(text=st.text(alphabet=st.sampled_from("0123456789 .-+()/@abx[]"), max_size=120))
@settings(max_examples=400)
def test_masking_is_idempotent_on_digit_heavy_text(text: str) -> None:
    once = mask(text).text
    assert mask(once).text == once


@given(text=st.text(alphabet=st.sampled_from("0123456789 .-+()/"), max_size=80))
@settings(max_examples=400)
def test_no_run_of_ten_digits_ever_survives(text: str) -> None:
    masked = mask(text).text
    assert all(len(run) < 10 for run in surviving_digit_runs(masked)), masked


def test_addresses_typed_back_to_back_are_all_masked() -> None:
    assert mask("a@x.id,b@y.id").text == "[EMAIL],[EMAIL]"
    assert mask("a@x.id/b@y.id").text == "[EMAIL]/[EMAIL]"
    assert mask("a@x.id/@y.id").text == "[EMAIL][EMAIL]"
    assert mask("0@a.ac0@a.ac").text == "[EMAIL][EMAIL]"
    assert mask("x@mail.id08123456789").text == "[EMAIL][PHONE]"
    assert mask("HP/email: 0812 3456 7890/budi@x.id").text == "HP/email: [PHONE]/[EMAIL]"
    assert mask("follow @lawhub on x.com").text == "follow @lawhub on x.com"


def test_a_long_message_is_masked_quickly() -> None:
    text = ("a" * 4000) + " 0812 3456 7890 " + ("1 " * 2000) + ("x@" * 1000)
    masked = mask(text)
    assert "0812" not in masked.text and "3456" not in masked.text
    assert masked.total >= 1


# -- fast paths give what the long way gives ----------------------------------------


@contextlib.contextmanager
def every_step_the_long_way() -> Iterator[None]:
    """Masking with its shortcuts off: every text normalised a character at a
    time, digits read through ``unicodedata``, every number however short
    decided on and split at every separator, profile names worked out and
    their regex compiled and run on every call."""
    uncached_regex = masking_names._name_regex.__wrapped__
    long_normalise = masking_text._normalise_every_character
    with (
        mock.patch.object(masking_masked, "normalise", long_normalise),
        mock.patch.object(masking_names, "normalise", long_normalise),
        mock.patch.object(masking_numbers, "digits_of", masking_text._digits_of_any),
        mock.patch.object(masking_numbers, "_FEWEST_DIGITS_MASKED", 0),
        mock.patch.object(masking_numbers, "_units", masking_numbers._split_units),
        mock.patch.object(masking_names, "_name_rule", masking_names._NameRule),
        mock.patch.object(masking_names, "_name_regex", uncached_regex),
        mock.patch.object(masking_names._NameRule, "cannot_match", lambda self, text: False),
    ):
        yield


def the_long_way(text: str, names: list[str]) -> MaskedText:
    with every_step_the_long_way():
        return mask(text, names=names)


_tricky = st.one_of(
    st.characters(),
    st.sampled_from("0123456789 .-+()/@[]abikKsSIİıſK\u200b\u00ad\u2060\ufeff０１٣µ"),
)


@given(text=st.text(_tricky, max_size=120))
@settings(max_examples=400)
def test_normalising_skips_no_character_the_character_by_character_way_would_touch(text: str) -> None:
    assert masking_text.normalise(text) == masking_text._normalise_every_character(text)


@given(text=st.text(st.characters(max_codepoint=127), max_size=200))
@settings(max_examples=300)
def test_ascii_text_is_already_normal_so_skipping_it_changes_nothing(text: str) -> None:
    assert masking_text._normalise_every_character(text) == text
    assert masking_text.normalise(text) is text


@given(text=st.text(st.one_of(_tricky, st.sampled_from("0123456789")), max_size=60))
@settings(max_examples=400)
def test_reading_digits_of_ascii_text_agrees_with_unicodedata(text: str) -> None:
    assert masking_text.digits_of(text) == masking_text._digits_of_any(text)


@given(message=messages())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_masking_generated_messages_with_shortcuts_equals_the_long_way(
    message: tuple[str, list[str], list[str], list[str]],
) -> None:
    text, _, _, names = message
    for variant in (text, text.lower(), text.upper()):
        assert mask(variant, names=names) == the_long_way(variant, names)


@given(text=st.text(_tricky, max_size=150), names=st.lists(st.text(_tricky, max_size=12), max_size=3))
@settings(max_examples=400, deadline=None)
def test_masking_any_text_with_shortcuts_equals_the_long_way(text: str, names: list[str]) -> None:
    assert mask(text, names=names) == the_long_way(text, names)


@given(text=st.text(st.sampled_from("0123456789 \t.-/()+\u2010٣０"), max_size=40))
@settings(max_examples=400)
def test_a_number_without_spaces_is_one_part_as_when_every_separator_is_read(text: str) -> None:
    for match in masking_numbers._NUMBER.finditer(text):
        assert masking_numbers._units(match.group()) == masking_numbers._split_units(match.group())


@given(text=st.text(st.sampled_from("0123456789 .-+()/"), max_size=30))
@settings(max_examples=400)
def test_no_number_of_fewer_than_the_fewest_digits_masked_is_ever_masked(text: str) -> None:
    with every_step_the_long_way():
        for match in masking_numbers._NUMBER.finditer(text):
            if len(masking_numbers.digits_of(match.group())) < masking_numbers._FEWEST_DIGITS_MASKED:
                for context in (None, *PiiKind):
                    assert masking_numbers._decide(match.group(), context) == []


@given(pieces=st.lists(st.one_of(_tricky, st.sampled_from(["[PHONE]", " ", "\u2028", "\x85", ".,", "İI"])), max_size=40))
@settings(max_examples=400)
def test_words_lowered_before_splitting_are_the_words_lowered_one_by_one(pieces: list[str]) -> None:
    gap = "".join(pieces)
    tokens = (t.lower().strip(masking_text.PUNCT) for t in masking_kinds.PLACEHOLDER_RE.sub(" ", gap).split())
    assert masking_numbers._words(gap) == [t for t in tokens if t]


_name_char = st.sampled_from("abcdeikmnrsuyABIKS'.-(")


@st.composite
def names_and_text(draw: st.DrawFn) -> tuple[list[str], str]:
    """Profile names, and a text made of their words (as typed, in other cases,
    with the punctuation around them or without) among other words."""
    words = st.text(_name_char, min_size=1, max_size=8)
    names = draw(st.lists(st.lists(words, min_size=1, max_size=3).map(" ".join), min_size=1, max_size=2))
    said = [w for name in names for w in name.split()]
    said += [w.strip(masking_text.PUNCT + "-") for w in said]
    said = [v for w in said if w for v in (w, w.lower(), w.upper())]
    filler = st.sampled_from([" ", ", ", "(", "[NAME]", "x", "9", "Budi", "é"])
    pieces = draw(st.lists(st.one_of(st.sampled_from(said), filler, words), max_size=12))
    return names, "".join(pieces)


@given(case=names_and_text())
@settings(max_examples=500, deadline=None)
def test_masking_names_with_shortcuts_equals_the_long_way(case: tuple[list[str], str]) -> None:
    names, text = case
    assert mask(text, names=names) == the_long_way(text, names)


@given(case=names_and_text())
@settings(max_examples=500, deadline=None)
def test_the_quick_name_check_only_skips_text_the_regex_finds_no_name_in(
    case: tuple[list[str], str],
) -> None:
    names, text = case
    if masking_names._NameRule(tuple(names)).cannot_match(text):
        assert the_long_way(text, names).counts[PiiKind.NAME] == 0


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("ılham datang", ["Ilham"]),  # dotless i
        ("İLHAM datang", ["ilham"]),  # dotted capital I
        ("ſiti datang", ["Siti"]),  # long s
        ("\u212aiki datang", ["Kiki"]),  # Kelvin sign
        ("Kiki datang", ["\u212aiki"]),
        ("ILHAM datang", ["ılham"]),  # and the same letters in the name, the text ASCII
        ("ilham datang", ["İlham"]),
        ("Siti datang", ["ſiti"]),
    ],
)
def test_letters_that_regex_case_folding_joins_to_ascii_ones_still_hide_a_name(
    text: str, names: list[str]
) -> None:
    assert mask(text, names=names).text == "[NAME] datang"


def test_the_names_and_regexes_remembered_are_bounded() -> None:
    assert masking_names._name_rule.cache_info().maxsize == masking_names._NAME_CACHE_SIZE
    assert masking_names._name_regex.cache_info().maxsize == masking_names._NAME_CACHE_SIZE
    for i in range(masking_names._NAME_CACHE_SIZE + 10):
        mask("Budi", names=[f"Budi {i}"])
    assert masking_names._name_rule.cache_info().currsize <= masking_names._NAME_CACHE_SIZE
