"""Rule-based intent and urgency of a client's message (pure).

Input is :class:`~lawhub_actors.core.masking.MaskedText` only: the
classifier never sees a phone number, NIK or name. Anything implementing
:class:`Classifier` (the rules here, or a remote model behind
``adapters/assist_http.py``) takes the same input and gives the same
:class:`Classification`.

How the rules read a message:

- Lower-cased, placeholders dropped, apostrophes removed, every other
  non-alphanumeric character a word break (``gono-gini`` → ``gono gini``).
- Common chat spellings are expanded first (``bsk`` → ``besok``,
  ``gk``/``ga``/``nggak`` → ``tidak``, ``skrg`` → ``sekarang``, …).
- Indonesian affixes are peeled off to find a stem: suffixes ``-nya -lah
  -kah -ku -mu``, then ``-kan -an -i``; prefixes ``di- ter- ber- ke- se-
  per- diper- memper-`` and ``meN-``/``peN-`` with the dropped consonant
  restored (``menangkap`` → ``tangkap``, ``pemecatan`` → ``pecat``,
  ``menyewa`` → ``sewa``). Words under five letters match only as typed.
  A rule word marked exact (``=ditahan``) never matches a stem: ``tahan``
  alone also means "endure".
- Each rule is a word or phrase with an intent weight and/or an urgency.
  Each rule counts once per message. The intent with the highest total
  weight wins (ties: criminal, family, inheritance, labour, debt,
  land_property, business_contract); no hit at all is ``other``.
- Urgency: ``critical`` for an arrest or detention (``ditangkap``,
  ``ditahan``, ``arrested``, ``polisi datang``…) unless the message marks
  a past marker within five words makes it past (``pernah``, ``tahun
  lalu``, ``years ago``…: reason ``urgency:past:…``);
  ``high`` for hearings, summons, deadlines and "today/tomorrow";
  ``low`` for price questions and thanks, or when nothing matched;
  otherwise ``normal``. ``ditahan`` right after money or a document
  (``gaji saya ditahan``: withheld salary) is not a detention.
- ``confidence`` = winning weight / (all weight + 1), so one strong word
  gives 0.75 and conflicting words give less; 0.0 when nothing matched.
- ``reasons`` name the rule words that fired (``"criminal:tangkap"``,
  ``"urgency:critical:tangkap"``), never words of the message itself.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol, final

from lawhub_actors.core.masking import MaskedText


class Intent(StrEnum):
    FAMILY = "family"
    CRIMINAL = "criminal"
    LABOUR = "labour"
    LAND_PROPERTY = "land_property"
    BUSINESS_CONTRACT = "business_contract"
    DEBT = "debt"
    INHERITANCE = "inheritance"
    OTHER = "other"


class Urgency(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Classification:
    """What a classifier concluded, and which rule words made it say so."""

    intent: Intent
    urgency: Urgency
    confidence: float
    reasons: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} is outside 0..1")


class Classifier(Protocol):
    """Anything that turns masked text into a :class:`Classification`."""

    def classify(self, text: MaskedText) -> Classification: ...


# -- rules -----------------------------------------------------------------------

_F, _C, _L = Intent.FAMILY, Intent.CRIMINAL, Intent.LABOUR
_P, _B, _D, _I = Intent.LAND_PROPERTY, Intent.BUSINESS_CONTRACT, Intent.DEBT, Intent.INHERITANCE
_CRIT, _HIGH, _LOW = Urgency.CRITICAL, Urgency.HIGH, Urgency.LOW
_PAST = "past"
_WITHHELD = frozenset(
    ("gaji", "upah", "uang", "dana", "ijazah", "sertifikat", "thr", "pesangon", "barang",
     "motor", "mobil", "ktp", "bpkb", "paspor", "salary", "wage", "money")
)


@dataclass(frozen=True, slots=True)
class Rule:
    """A word or phrase; ``=word`` matches only exactly as typed."""

    phrase: tuple[str, ...]
    intent: Intent | None = None
    weight: float = 0.0
    urgency: Urgency | str | None = None
    unless_after: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return " ".join(word.lstrip("=") for word in self.phrase)


def _rules(
    intent: Intent | None, weight: float, words: str, urgency: Urgency | str | None = None
) -> list[Rule]:
    """Rules from a ``|``-separated list of words and phrases."""
    return [
        Rule(tuple(item.split()), intent, weight, urgency)
        for item in (part.strip() for part in words.split("|"))
        if item
    ]


RULES: tuple[Rule, ...] = (
    # family
    *_rules(_F, 3, "cerai|talak|hak asuh|nafkah|gono gini|harta bersama|kdrt|pranikah|divorce|"
               "divorced|custody|alimony|child support|domestic violence"),
    *_rules(_F, 2, "rujuk|mantan suami|mantan istri|marriage|my ex"),
    *_rules(_F, 1, "nikah|anak|suami istri|wedding"),
    # criminal
    *_rules(_C, 3, "tangkap", _CRIT),
    Rule(("=ditahan",), _C, 3, _CRIT, _WITHHELD),
    Rule(("=ditahannya",), _C, 3, _CRIT, _WITHHELD),
    *_rules(_C, 3, "=penahanan|=tahanan|=diamankan|=digerebek|arrested|arrest|detained|"
                   "detention|police custody|in custody|raided", _CRIT),
    *_rules(_C, 1, "polisi datang|dijemput polisi|police came|police are here", _CRIT),
    *_rules(_C, 3, "pidana|penjara|tersangka|terdakwa|kriminal|narkoba|aniaya|criminal|"
                   "jail|prison|bail|assault|assaulted"),
    *_rules(_C, 2, "polisi|lapor polisi|laporan polisi|polres|polsek|polda|jaksa|sidik|bap|"
                   "tipu|curi|=dipukul|police|charged|suspect|fraud|scam|scammed|stolen|theft"),
    # labour
    *_rules(_L, 3, "phk|pesangon|pecat|disnaker|hubungan industrial|tenagakerja|fired|"
                   "severance|dismissed|laid off|layoff|sacked"),
    *_rules(_L, 2, "gaji|upah|lembur|thr|buruh|resign|kontrak kerja|wage|wages|salary|"
                   "overtime|employer|employment|terminated|termination"),
    *_rules(_L, 1, "karyawan|kerja|employee|boss|atasan"),
    # land and property
    *_rules(_P, 3, "tanah|shm|ajb|girik|=kontrakan|gusur|usir|bpn|landlord|eviction|evicted|"
                   "evict"),
    *_rules(_P, 2, "sertifikat|sertipikat|sengketa tanah|sewa|balik nama|imb|apartemen|"
                   "properti|property|tenant|lease|rent|land|deed"),
    *_rules(_P, 1, "rumah|kos|kost|pbb|house|apartment"),
    # business and contracts
    *_rules(_B, 3, "wanprestasi|akta pendirian|breach of contract"),
    *_rules(_B, 2, "kontrak|perjanjian|invoice|mou|kerja sama|kerjasama|supplier|vendor|"
                   "saham|nib|izin usaha|merek|bisnis|breach|contract|agreement|business|"
                   "shareholder|trademark"),
    *_rules(_B, 1, "pt|cv|usaha|partner|company|client"),
    # debt
    *_rules(_D, 3, "utang|hutang|pinjol|pinjaman online|debt collector|gagal bayar|debt|"
                   "debts"),
    *_rules(_D, 2, "pinjam|kredit|tagih|cicil|leasing|loan|lender|collector|owe|owes|owed|"
                   "repossess|repossessed"),
    *_rules(_D, 1, "bunga|interest"),
    # inheritance
    *_rules(_I, 3, "waris|wasiat|faraid|tanah warisan|rumah warisan|harta warisan|"
                   "inheritance|inherit|inherited|heir|heirs|probate|"
                   "a will|the will|last will|his will|her will|their will"),
    *_rules(_I, 2, "hibah|estate"),
    *_rules(_I, 1, "meninggal|almarhum|almarhumah|wafat|passed away|died"),
    # urgency only
    *_rules(None, 0, "sidang|=panggilan|=dipanggil|=pemanggilan|somasi|besok|lusa|hari ini|"
                     "deadline|tenggat|batas waktu|jatuh tempo|eksekusi|darurat|segera|"
                     "mendesak|tomorrow|today|tonight|court date|hearing|summons|summoned|"
                     "subpoena|urgent|emergency|asap", _HIGH),
    *_rules(None, 0, "biaya|tarif|harga|info|informasi|tanya|sekadar|terima kasih|makasih|"
                     "fee|fees|price|cost|thanks|thank you|question|wondering|just asking",
            _LOW),
    *_rules(None, 0, "pernah|tahun lalu|bulan lalu|sudah bebas|years ago|months ago|"
                     "last year|used to|released", _PAST),
)

_PRIORITY: tuple[Intent, ...] = (_C, _F, _I, _L, _D, _P, _B)
_EARLIER: dict[Intent, int] = {intent: -at for at, intent in enumerate(_PRIORITY)}
"""Minus each intent's place in :data:`_PRIORITY`: the higher, the earlier."""

_SPELLING: dict[str, str] = {
    "bsk": "besok", "bsok": "besok", "besuk": "besok", "skrg": "sekarang", "skrng": "sekarang",
    "gk": "tidak", "ga": "tidak", "gak": "tidak", "nggak": "tidak", "ngga": "tidak",
    "tdk": "tidak", "hr": "hari", "td": "tadi", "tdi": "tadi", "sy": "saya", "tgl": "tanggal",
    "sdh": "sudah", "udh": "sudah", "blm": "belum", "utk": "untuk", "krn": "karena",
    "yg": "yang", "org": "orang", "tmrw": "tomorrow", "tmr": "tomorrow", "thx": "thanks",
    "dtangkap": "ditangkap", "dipecet": "dipecat",
}

_SUFFIXES_1 = ("nya", "lah", "kah", "ku", "mu")
_SUFFIXES_2 = ("kan", "an", "i")
_PREFIXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("memper", ("",)), ("diper", ("",)), ("meny", ("s",)), ("meng", ("k", "")),
    ("mem", ("p", "")), ("men", ("t", "")), ("me", ("",)), ("peny", ("s",)),
    ("peng", ("k", "")), ("pem", ("p", "")), ("pen", ("t", "")), ("per", ("",)),
    ("pe", ("",)), ("di", ("",)), ("ter", ("",)), ("ber", ("",)), ("be", ("",)),
    ("ke", ("",)), ("se", ("",)),
)
_MIN_STEM = 4
_PAST_REACH = 5
_PLACEHOLDERS = re.compile(r"\[(?:PHONE|EMAIL|NIK|NPWP|ACCOUNT|NAME)\]")
_WORD = re.compile(r"[^\W_]+")
_CACHE_SIZE: Final = 8192
"""Words whose stems (and, per classifier, candidate rules) are remembered:
a chat's vocabulary is small, and a few hundred bytes each."""


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _stems(word: str) -> frozenset[str]:
    """The word and the stems it may have once Indonesian affixes are peeled off."""
    return _peel(word)


def _peel(word: str) -> frozenset[str]:
    """:func:`_stems`, worked out anew on every call."""
    if len(word) <= _MIN_STEM:
        return frozenset((word,))
    bases = {word}
    for suffix in _SUFFIXES_1:
        if word.endswith(suffix) and len(word) - len(suffix) >= _MIN_STEM:
            bases.add(word[: -len(suffix)])
    for base in list(bases):
        for suffix in _SUFFIXES_2:
            if base.endswith(suffix) and len(base) - len(suffix) >= _MIN_STEM:
                bases.add(base[: -len(suffix)])
    stems = set(bases)
    for base in bases:
        for prefix, restores in _PREFIXES:
            if base.startswith(prefix) and len(base) - len(prefix) >= _MIN_STEM - 1:
                rest = base[len(prefix) :]
                stems.update(restore + rest for restore in restores)
    return frozenset(stem for stem in stems if len(stem) >= _MIN_STEM - 1)


def words(text: str) -> list[str]:
    """The normalised words the rules see."""
    if "[" in text:  # every placeholder starts with one
        text = _PLACEHOLDERS.sub(" ", text)
    text = text.casefold().replace("'", "").replace("\u2019", "")
    spelling = _SPELLING
    return [spelling.get(word, word) for word in _WORD.findall(text)]


@final
class _Compiled:
    """A rule as :class:`RuleClassifier` applies it, worked out once.

    Equal rules share one: like the rules themselves in the dict of fired
    rules, each counts once per message.
    """

    __slots__ = ("checks", "intent", "intent_reason", "length", "past_reason", "rule",
                 "unless_after", "urgency", "urgency_reason", "weight")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.length = len(rule.phrase)
        self.checks: tuple[tuple[int, bool, str], ...] = tuple(
            (k, part.startswith("="), part[1:] if part.startswith("=") else part)
            for k, part in enumerate(rule.phrase)
            # The first word is looked up by one of its stems: only "=word" needs a check.
            if k > 0 or part.startswith("=")
        )
        """(offset, exact, word) of each word still to match."""
        self.unless_after = rule.unless_after
        self.intent = rule.intent
        self.weight = rule.weight
        self.urgency = rule.urgency
        self.intent_reason = f"{rule.intent}:{rule.name}"
        self.urgency_reason = f"urgency:{rule.urgency}:{rule.name}"
        self.past_reason = f"urgency:past:{rule.name}"


def _index(rules: Iterable[Rule]) -> dict[str, list[_Compiled]]:
    index: dict[str, list[_Compiled]] = {}
    compiled: dict[Rule, _Compiled] = {}
    for rule in rules:
        key = rule.phrase[0].lstrip("=")
        if rule not in compiled:
            compiled[rule] = _Compiled(rule)
        index.setdefault(key, []).append(compiled[rule])
    return index


class RuleClassifier:
    """The built-in keyword rules (Indonesian and English)."""

    def __init__(self, rules: Iterable[Rule] = RULES) -> None:
        self._index = _index(rules)
        self._candidates: Callable[[str], tuple[_Compiled, ...]] = functools.lru_cache(
            maxsize=_CACHE_SIZE
        )(self._candidates_of)

    def _candidates_of(self, word: str) -> tuple[_Compiled, ...]:
        """The rules whose first word is a stem of ``word``, in the order they are tried."""
        index = self._index
        return tuple(rule for key in _stems(word) for rule in index.get(key, ()))

    def _fired(self, tokens: list[str]) -> dict[_Compiled, int]:
        """Each rule that matched, with the position of its first match."""
        stems = [_stems(word) for word in tokens]
        fired: dict[_Compiled, int] = {}
        count = len(tokens)
        for i, word in enumerate(tokens):
            for rule in self._candidates(word):
                if rule in fired or i + rule.length > count:
                    continue
                if not all(
                    tokens[i + k] == part if exact else part in stems[i + k]
                    for k, exact, part in rule.checks
                ):
                    continue
                if rule.unless_after and any(
                    rule.unless_after & s for s in stems[max(0, i - 3) : i]
                ):
                    continue
                fired[rule] = i
        return fired

    def classify(self, text: MaskedText) -> Classification:
        if not isinstance(text, MaskedText):
            raise TypeError("classify() takes MaskedText only: call mask() first")
        fired = self._fired(words(text.text))
        scores: dict[Intent, float] = {}
        reasons: list[str] = []
        for rule in fired:
            if rule.intent is not None:
                scores[rule.intent] = scores.get(rule.intent, 0.0) + rule.weight
                reasons.append(rule.intent_reason)
        past = [at for rule, at in fired.items() if rule.urgency == _PAST]
        urgencies: set[Urgency | str | None] = set()
        for rule, at in fired.items():
            if rule.urgency is _CRIT and any(abs(at - p) <= _PAST_REACH for p in past):
                reasons.append(rule.past_reason)
            elif rule.urgency is not None and rule.urgency != _PAST:
                urgencies.add(rule.urgency)
                reasons.append(rule.urgency_reason)
        if scores:
            intent = max(_PRIORITY, key=lambda i: (scores.get(i, 0.0), _EARLIER[i]))
            confidence = round(scores[intent] / (sum(scores.values()) + 1.0), 3)
        else:
            intent, confidence = Intent.OTHER, 0.0
        if _CRIT in urgencies:
            urgency = Urgency.CRITICAL
        elif _HIGH in urgencies:
            urgency = Urgency.HIGH
        elif _LOW in urgencies or not scores:
            urgency = Urgency.LOW
        else:
            urgency = Urgency.NORMAL
        return Classification(intent, urgency, confidence, tuple(dict.fromkeys(reasons)))


_DEFAULT = RuleClassifier()


def classify(text: MaskedText) -> Classification:
    """Classify with the built-in rules."""
    return _DEFAULT.classify(text)
