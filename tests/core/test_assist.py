"""Rule-based intent and urgency on masked client messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lawhub_actors.core import assist
from lawhub_actors.core.assist import (
    RULES,
    Classification,
    Classifier,
    Intent,
    Rule,
    RuleClassifier,
    Urgency,
    classify,
    words,
)
from lawhub_actors.core.masking import mask

F, C, L, P = Intent.FAMILY, Intent.CRIMINAL, Intent.LABOUR, Intent.LAND_PROPERTY
B, D, INH, OTH = Intent.BUSINESS_CONTRACT, Intent.DEBT, Intent.INHERITANCE, Intent.OTHER
CRIT, HIGH, NORM, LOW = Urgency.CRITICAL, Urgency.HIGH, Urgency.NORMAL, Urgency.LOW

MESSAGES = [
    # criminal
    ("Pak, suami saya ditangkap polisi tadi malam", C, CRIT),
    ("Tolong pak, adik saya ditahan di polsek sejak kemarin, belum ada surat apa2", C, CRIT),
    ("Polisi datang ke rumah mau bawa anak saya sekarang!!", C, CRIT),
    ("My son was arrested an hour ago and they won't let us see him", C, CRIT),
    ("My husband is detained at the police station, please help", C, CRIT),
    ("Saya pernah ditangkap tahun lalu, apakah bisa bikin SKCK?", C, NORM),
    ("Saya mau lapor polisi soal penipuan online", C, NORM),
    ("Sy dapat surat panggilan dari polres sbg saksi, hrs datang bsk", C, HIGH),
    ("Anak saya jadi tersangka kasus narkoba, sidang minggu depan", C, HIGH),
    # family
    ("sidang cerai saya besok jam 9", F, HIGH),
    ("Bu, saya mau gugat cerai suami, KDRT sudah bertahun-tahun", F, NORM),
    ("Mantan suami tidak bayar nafkah anak sejak 6 bulan", F, NORM),
    ("Bagaimana cara dapat hak asuh anak setelah perceraian?", F, NORM),
    ("Berapa biaya pengacara untuk perceraian?", F, LOW),
    ("I want a divorce and custody of my kids", F, NORM),
    # labour
    ("I was fired without severance", L, NORM),
    ("Saya di PHK sepihak tanpa pesangon", L, NORM),
    ("Gaji saya ditahan perusahaan sudah 3 bulan", L, NORM),
    ("sy dipecat hari ini gk dikasih surat apa2", L, HIGH),
    ("Lembur tidak dibayar dan THR dipotong, apa bisa lapor ke disnaker?", L, NORM),
    # land and property
    ("Tanah kami diserobot tetangga, sertifikat SHM atas nama bapak", P, NORM),
    ("Rumah kontrakan saya mau diusir pemilik padahal sewa belum habis", P, NORM),
    ("My landlord is evicting me tomorrow", P, HIGH),
    ("Ada sengketa tanah dengan developer, besok eksekusi", P, HIGH),
    # business and contracts
    ("Partner bisnis saya wanprestasi, tidak bayar invoice sesuai perjanjian", B, NORM),
    ("Kami dapat somasi dari supplier, batas waktu 7 hari", B, HIGH),
    ("Mau bikin perjanjian kerja sama untuk PT kami", B, NORM),
    ("Our distributor breached the contract, deadline to respond is Friday", B, HIGH),
    # debt
    ("Saya dikejar debt collector pinjol, diteror setiap hari", D, NORM),
    ("Hutang saya di bank sudah jatuh tempo hari ini", D, HIGH),
    ("Cicilan kredit motor macet, leasing mau tarik motor", D, NORM),
    ("A friend owes me money and refuses to repay the loan", D, NORM),
    # inheritance
    ("Tanah warisan orang tua saya dikuasai kakak, ahli waris lain tidak dapat bagian", INH, NORM),
    ("Ayah saya meninggal, ada wasiat tapi saudara tidak setuju", INH, NORM),
    ("My father died and my brothers won't share the inheritance, there is a will", INH, NORM),
    # other
    ("Halo selamat pagi", OTH, LOW),
    ("Terima kasih banyak pak atas bantuannya", OTH, LOW),
    ("Bisa minta info jam buka kantor?", OTH, LOW),
]


@pytest.mark.parametrize(("message", "intent", "urgency"), MESSAGES)
def test_realistic_client_messages_get_the_expected_intent_and_urgency(
    message: str, intent: Intent, urgency: Urgency
) -> None:
    result = classify(mask(message))
    assert (result.intent, result.urgency) == (intent, urgency), result


def test_the_table_is_large_and_covers_every_intent_and_urgency() -> None:
    assert len(MESSAGES) >= 30
    assert {m[1] for m in MESSAGES} == set(Intent)
    assert {m[2] for m in MESSAGES} == set(Urgency)


def test_reasons_name_the_rule_words_that_fired() -> None:
    result = classify(mask("Pak, suami saya ditangkap polisi tadi malam"))
    assert result.reasons == ("criminal:tangkap", "criminal:polisi", "urgency:critical:tangkap")


def test_reasons_never_carry_words_of_the_message() -> None:
    rule_words = {word.lstrip("=") for rule in RULES for word in rule.phrase}
    text = "Budi Santoso ditangkap di Jalan Melati, sidang besok, hutang Rp 5 juta ke Pak Joko"
    result = classify(mask(text, names=["Budi Santoso"]))
    for reason in result.reasons:
        words_in_reason = reason.rsplit(":", 1)[1].split()
        assert all(word in rule_words for word in words_in_reason), reason
    assert not any(name in " ".join(result.reasons).lower() for name in ("budi", "melati", "joko"))


@given(text=st.text(max_size=300))
@settings(max_examples=200)
def test_any_text_classifies_within_bounds_and_reasons_come_from_rules(text: str) -> None:
    rule_names = {rule.name for rule in RULES}
    result = classify(mask(text))
    assert 0.0 <= result.confidence <= 1.0
    assert all(reason.rsplit(":", 1)[1] in rule_names for reason in result.reasons)


def test_indonesian_affixes_and_chat_spellings_reach_the_stem() -> None:
    for text in ("pemecatan sepihak", "saya dipecat", "mereka memecat saya", "di pecat"):
        assert classify(mask(text)).intent is L, text
    for text in ("penangkapan", "menangkap", "tertangkap", "ditangkapnya"):
        assert classify(mask(text)).urgency is CRIT, text
    assert words("Sy gk tau, bsk sidang!") == ["saya", "tidak", "tau", "besok", "sidang"]


def test_ditahan_after_money_or_a_document_is_withheld_not_detained() -> None:
    assert classify(mask("ijazah saya ditahan kantor")).urgency is not CRIT
    assert classify(mask("suami saya ditahan")).urgency is CRIT


def test_a_past_marker_far_from_the_arrest_does_not_downgrade_it() -> None:
    text = "Saya pernah konsultasi di sini soal tanah. Sekarang lain: suami saya baru saja ditangkap"
    assert classify(mask(text)).urgency is CRIT


def test_placeholders_are_not_words() -> None:
    assert words(mask("hubungi 081234567890 atau budi@x.id").text) == ["hubungi", "atau"]


def test_confidence_falls_when_intents_conflict() -> None:
    clear = classify(mask("saya dipecat tanpa pesangon"))
    mixed = classify(mask("saya dipecat, hutang pinjol menumpuk, mau cerai"))
    assert clear.confidence > mixed.confidence > 0
    assert classify(mask("halo")).confidence == 0.0


def test_raw_text_is_refused_at_runtime_too() -> None:
    with pytest.raises(TypeError, match="MaskedText"):
        classify("suami saya ditangkap")  # type: ignore[arg-type]


def test_the_rule_classifier_satisfies_the_protocol() -> None:
    classifier: Classifier = RuleClassifier()
    assert isinstance(classifier.classify(mask("x")), Classification)


def test_confidence_must_be_a_probability() -> None:
    with pytest.raises(ValueError, match="confidence"):
        Classification(OTH, LOW, 1.5)


# -- the shortcuts give what the rules say, applied word by word ----------------------


def test_equal_rules_count_once_as_one_rule() -> None:
    rule = Rule(("cerai",), F, 3)
    twice = RuleClassifier([rule, Rule(("cerai",), F, 3)])
    assert twice.classify(mask("mau cerai")) == RuleClassifier([rule]).classify(mask("mau cerai"))
    assert twice.classify(mask("mau cerai")).confidence == 0.75


_ROOTS = ["tangkap", "tahan", "pecat", "gaji", "cerai", "sewa", "tipu", "curi", "kontrak", "waris",
          "pukul", "panggil", "usir", "tagih", "pinjam", "nikah", "tanya", "kerja", "makan"]
_PREFIXES = ["", "", "di", "ter", "ber", "ke", "se", "per", "diper", "memper", "me", "men", "mem",
             "meng", "meny", "pe", "pen", "pem", "peng", "peny"]
_SUFFIXES = ["", "", "an", "kan", "i", "nya", "lah", "kah", "ku", "mu", "annya", "kannya"]
affixed_words = st.builds(lambda p, r, s: p + r + s, st.sampled_from(_PREFIXES),
                          st.sampled_from(_ROOTS), st.sampled_from(_SUFFIXES))
any_words = st.one_of(affixed_words, st.text(st.sampled_from("abdegikmnprstuy"), max_size=12))


@given(word=any_words)
@settings(max_examples=500)
def test_remembered_stems_are_the_stems_worked_out_anew_in_the_same_order(word: str) -> None:
    remembered, fresh = assist._stems(word), assist._peel(word)
    assert remembered == fresh
    assert list(remembered) == list(fresh)  # rules are tried in this order
    assert assist._stems(word) is remembered


def _fired_word_by_word(rules: list[Rule], tokens: list[str]) -> dict[Rule, int]:
    """The rules that fire, found as the rules read: each word's stems worked
    out anew, each rule's words compared one by one."""
    index: dict[str, list[Rule]] = {}
    for rule in rules:
        index.setdefault(rule.phrase[0].lstrip("="), []).append(rule)
    stems = [assist._peel(word) for word in tokens]

    def matches(part: str, word: str, its_stems: frozenset[str]) -> bool:
        return word == part[1:] if part.startswith("=") else part in its_stems

    fired: dict[Rule, int] = {}
    for i in range(len(tokens)):
        for key in stems[i]:
            for rule in index.get(key, ()):
                if rule in fired or i + len(rule.phrase) > len(tokens):
                    continue
                if not all(matches(part, tokens[i + k], stems[i + k])
                           for k, part in enumerate(rule.phrase)):
                    continue
                if rule.unless_after and any(rule.unless_after & s for s in stems[max(0, i - 3) : i]):
                    continue
                fired[rule] = i
    return fired


def _classified_word_by_word(rules: list[Rule], text: str) -> Classification:
    fired = _fired_word_by_word(rules, words(text))
    scores: dict[Intent, float] = {}
    reasons: list[str] = []
    for rule in fired:
        if rule.intent is not None:
            scores[rule.intent] = scores.get(rule.intent, 0.0) + rule.weight
            reasons.append(f"{rule.intent}:{rule.name}")
    past = [at for rule, at in fired.items() if rule.urgency == "past"]
    urgencies: set[Urgency | str | None] = set()
    for rule, at in fired.items():
        if rule.urgency is CRIT and any(abs(at - p) <= 5 for p in past):
            reasons.append(f"urgency:past:{rule.name}")
        elif rule.urgency is not None and rule.urgency != "past":
            urgencies.add(rule.urgency)
            reasons.append(f"urgency:{rule.urgency}:{rule.name}")
    priority = (C, F, INH, L, D, P, B)
    if scores:
        intent = max(priority, key=lambda i: (scores.get(i, 0.0), -priority.index(i)))
        confidence = round(scores[intent] / (sum(scores.values()) + 1.0), 3)
    else:
        intent, confidence = OTH, 0.0
    urgency = (CRIT if CRIT in urgencies else HIGH if HIGH in urgencies
               else LOW if LOW in urgencies or not scores else NORM)
    return Classification(intent, urgency, confidence, tuple(dict.fromkeys(reasons)))


_RULE_WORDS = sorted({w.lstrip("=") for rule in RULES for w in rule.phrase})
message_words = st.one_of(
    st.sampled_from(_RULE_WORDS), affixed_words, any_words,
    st.sampled_from(["ditahan", "ditahannya", "gaji", "ijazah", "pernah", "tahun", "lalu", "saya",
                     "[PHONE]", "bsk", "gk", "Polisi", "DATANG", "don't", "the", "will", "a"]),
)
message_texts = st.lists(message_words, max_size=30).flatmap(
    lambda ws: st.lists(st.sampled_from([" ", ", ", ". ", "-", "'", "’", "!"]),
                        min_size=len(ws), max_size=len(ws))
    .map(lambda seps: "".join(w + s for w, s in zip(ws, seps, strict=True)))
)


@given(text=message_texts)
@settings(max_examples=500, deadline=None)
def test_the_built_in_rules_fire_and_classify_as_when_applied_word_by_word(text: str) -> None:
    classifier = RuleClassifier()
    tokens = words(text)
    fired = [(compiled.rule, at) for compiled, at in classifier._fired(tokens).items()]
    assert fired == list(_fired_word_by_word(list(RULES), tokens).items())
    assert classifier.classify(mask(text)) == _classified_word_by_word(list(RULES), mask(text).text)


_ODD_RULES = [
    Rule(("=ditahan", "polisi"), C, 2, CRIT), Rule(("gaji", "=ditahan"), L, 2),
    Rule(("tangkap",), C, 3, CRIT, frozenset({"gaji"})), Rule(("tangkap",), C, 3, CRIT, frozenset({"gaji"})),
    Rule(("==tahan",), C, 1), Rule(("tahan", "tahan", "tahan"), F, 1, "past"),
    Rule(("pecat",), L, 3, "critical"), Rule(("pernah",), None, 0, "past"), Rule(("sewa",), P, 0.5, LOW),
]


@given(text=message_texts, rules=st.lists(st.sampled_from(_ODD_RULES), min_size=1, max_size=8))
@settings(max_examples=500, deadline=None)
def test_any_rules_fire_and_classify_as_when_applied_word_by_word(text: str, rules: list[Rule]) -> None:
    classifier = RuleClassifier(rules)
    tokens = words(text)
    fired = [(compiled.rule, at) for compiled, at in classifier._fired(tokens).items()]
    assert fired == list(_fired_word_by_word(rules, tokens).items())
    assert classifier.classify(mask(text)) == _classified_word_by_word(rules, mask(text).text)


def test_the_words_remembered_are_bounded() -> None:
    assert assist._stems.cache_info().maxsize == assist._CACHE_SIZE
    classifier = RuleClassifier()
    for i in range(assist._CACHE_SIZE + 10):
        classifier.classify(mask(f"kata{i}"))
    assert assist._stems.cache_info().currsize <= assist._CACHE_SIZE
