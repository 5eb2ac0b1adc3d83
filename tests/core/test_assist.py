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


def test_the_words_remembered_are_bounded() -> None:
    assert assist._stems.cache_info().maxsize == assist._CACHE_SIZE
    classifier = RuleClassifier()
    for i in range(assist._CACHE_SIZE + 10):
        classifier.classify(mask(f"kata{i}"))
    assert assist._stems.cache_info().currsize <= assist._CACHE_SIZE
