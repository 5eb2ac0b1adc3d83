"""CPU cost of masking (``core/masking/``) and of the rule classifier
(``core/assist.py``) per inbound text message, against the same two modules
as they were at a baseline commit, measured in the same run.

The messages are a few thousand distinct short WhatsApp texts in Indonesian
and English made from a fixed seed: complaints and questions with, in most
of them, personal data (phones as ``+62 812-…``, ``08…``, ``62…``, emails,
16-digit NIKs, NPWPs, bank accounts, names) and harmless numbers (dates,
times, amounts, articles of law). About one in six carries non-ASCII text
(emoji mostly; curly quotes, full-width digits, accents). Each message comes
with its sender's profile name, as the sessions actor passes it; the senders
are a pool of a few hundred customers, each writing several messages.

*mask* is ``mask(text, names=[profile])``; *classify* is ``classify()`` of
the already masked text. CPU time is ``time.process_time()`` over one pass
through every message, divided by the number of messages; the baseline and
the current code take turns, pass after pass, and the table gives the
median pass with the min-max of all passes. Every pass sees the same
messages, so whatever a version caches is warm after the first; one more
pass, of one message from each of as many senders never seen before, shows
masking when nothing about the sender is cached yet. Before timing, both
versions mask and classify every message and must agree exactly: the bench
fails otherwise. The baseline is read with ``git show`` from the repository;
when it cannot be read, only the current code is measured.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import re
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.common import REPO, Figures, spread
from bench.report import print_section
from lawhub_actors.core import assist, masking

BASELINE = "55cbcb6"
"""The last commit before issue 10 made masking and classification cheaper."""
SEED = 10
MESSAGES = 3000
CUSTOMERS = 300
REPEATS = 7

# -- messages ------------------------------------------------------------------------

_FIRST = ["Budi", "Siti", "Agus", "Dewi", "Made", "Rizky", "Putu", "Joko", "Hendra", "Sri",
          "Andi", "Nur", "Wayan", "Eko", "Rina", "Yusuf", "Fitri", "Bambang", "Lestari", "Ahmad",
          "Sarah", "John", "Maria", "David", "Ayu", "Dimas", "Intan", "Fajar", "Wulan", "Hadi"]
_LAST = ["Santoso", "Nurhaliza", "Wijaya", "Lestari", "Wirawan", "Pratama", "Saputra",
         "Hidayat", "Kusuma", "Siregar", "Nasution", "Simanjuntak", "Gunawan", "Setiawan",
         "Halim", "Tan", "Smith", "Harahap", "Purnomo", "Utami", ""]
_HONORIFIC = ["", "", "", "Bapak ", "Ibu ", "Mas ", "Kak "]

_TEMPLATES_ID = [
    "Pak, suami saya {arrest} polisi tadi malam, tolong hubungi saya di {phone}",
    "Selamat pagi, saya {name}. Saya mau konsultasi soal cerai, HP {phone}",
    "Saya di PHK tanpa pesangon, gaji {month} bulan belum dibayar. Email saya {email}",
    "Tanah warisan orang tua saya dikuasai kakak, sertifikat SHM atas nama bapak",
    "Hutang saya di pinjol Rp {amount} sudah jatuh tempo {date}, debt collector neror terus",
    "NIK saya {nik}, apakah bisa dipakai untuk laporan polisi?",
    "Mohon info biaya konsultasi, transfer ke rek BCA {account} a.n. {name}?",
    "sidang cerai saya besok jam {hour} di PN Jakarta Selatan, perkara {case}",
    "sy dipecat hr ini gk dikasih surat apa2, wa sy {phone}",
    "Kontrak kerja sama dengan supplier dilanggar, NPWP perusahaan {npwp}",
    "Ibu, adik saya ditahan di polsek sejak {date}, belum ada surat apa2",
    "Rumah kontrakan saya mau diusir pemilik padahal sewa belum habis, hubungi {phone}",
    "Ayah saya meninggal, ada wasiat tapi saudara tidak setuju. {name}",
    "Terima kasih banyak pak atas bantuannya",
    "Gaji saya ditahan perusahaan sudah {month} bulan, no rek {account}",
    "Saya pernah ditangkap tahun lalu, apakah bisa bikin SKCK? KTP {nik}",
    "Halo, saya mau tanya soal pasal {article} KUHP, bisa telp {phone}?",
    "Cicilan kredit motor macet, leasing mau tarik motor hari ini",
    "Mantan suami tidak bayar nafkah anak sejak {month} bulan, email {email}",
    "Partner bisnis saya wanprestasi, tidak bayar invoice Rp {amount}",
]
_TEMPLATES_EN = [
    "Hi, my husband was {arrest_en} an hour ago, please call me on {phone}",
    "I was fired without severance, my email is {email}",
    "My landlord is evicting me tomorrow, I'm {name}, phone {phone}",
    "A friend owes me Rp {amount} and refuses to repay the loan",
    "My father died and my brothers won't share the inheritance, there is a will",
    "Our distributor breached the contract, deadline to respond is {date}",
    "How much are your fees? Thanks",
    "Please send the invoice to {email}, our tax number (NPWP) is {npwp}",
    "I want a divorce and custody of my kids. Contact me at {phone} or {email}",
    "Hello, court date is {date} at {hour}.00, my ID (NIK) {nik}",
]
_EXTRAS = ["", "", "", " tolong segera", " makasih", " 🙏", " ya pak", " asap", " skrg"]
_FULL_WIDTH_PHONE = "".join(chr(0xFF10 + int(d)) for d in "081234567890")
_NON_ASCII = [" “mohon dibantu”", " 🙏🙏", " " + _FULL_WIDTH_PHONE, " José", " café", " naïve"]


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _grouped(rng: random.Random, digits: str) -> str:
    sep = rng.choice(["", "", " ", "-", "."])
    if not sep:
        return digits
    parts = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    return sep.join(parts)


def _phone(rng: random.Random) -> str:
    national = "8" + rng.choice("1235789") + _digits(rng, rng.randint(7, 9))
    prefix = rng.choice(["0", "0", "+62", "+62 ", "62"])
    return prefix + _grouped(rng, national)


def _nik(rng: random.Random) -> str:
    province = rng.choice([11, 12, 31, 32, 33, 35, 36, 51, 73])
    day = rng.randint(1, 28) + rng.choice([0, 40])
    digits = (f"{province:02}{rng.randint(1, 79):02}{rng.randint(1, 40):02}{day:02}"
              f"{rng.randint(1, 12):02}{rng.randint(0, 99):02}{rng.randint(1, 9999):04}")
    return rng.choice([digits, digits, " ".join(digits[i : i + 4] for i in range(0, 16, 4))])


def _npwp(rng: random.Random) -> str:
    d = _digits(rng, 15)
    return rng.choice([f"{d[:2]}.{d[2:5]}.{d[5:8]}.{d[8]}-{d[9:12]}.{d[12:]}", d, "0" + d])


def _fill(rng: random.Random, template: str, name: str) -> str:
    values = {
        "phone": _phone(rng),
        "email": f"{name.rsplit(maxsplit=1)[-1].lower()}{rng.randint(1, 999)}@"
                 f"{rng.choice(['gmail.com', 'yahoo.co.id', 'mail.id', 'kantor.co.id'])}",
        "nik": _nik(rng),
        "npwp": _npwp(rng),
        "account": _grouped(rng, _digits(rng, rng.randint(10, 13))),
        "name": name,
        "amount": f"{rng.randint(1, 900)}.{rng.randint(0, 999):03}.000",
        "date": f"{rng.randint(1, 28):02}-{rng.randint(1, 12):02}-20{rng.randint(20, 26)}",
        "hour": str(rng.randint(8, 16)),
        "month": str(rng.randint(2, 11)),
        "case": f"{rng.randint(1, 999)}/Pdt.G/20{rng.randint(20, 26)}/PN.Jkt.Sel",
        "article": str(rng.randint(100, 500)),
        "arrest": rng.choice(["ditangkap", "dtangkap", "diamankan", "dijemput"]),
        "arrest_en": rng.choice(["arrested", "detained", "taken"]),
    }
    return template.format(**values)


@dataclass(frozen=True, slots=True)
class Message:
    text: str
    names: tuple[str, ...]


def messages(count: int = MESSAGES, seed: int = SEED, customers: int = CUSTOMERS) -> list[Message]:
    """``count`` distinct texts, each with its sender's profile name (one of
    ``customers`` profiles, drawn at random)."""
    rng = random.Random(seed)
    profiles = [
        (rng.choice(_HONORIFIC) + rng.choice(_FIRST) + " " + rng.choice(_LAST)).strip()
        for _ in range(customers)
    ]
    return _write(rng, count, lambda: rng.choice(profiles))


def strangers(count: int = MESSAGES, seed: int = SEED + 1) -> list[Message]:
    """``count`` distinct texts, each from a sender of its own whose name
    none of :func:`messages` uses (surnames made of syllables)."""
    rng = random.Random(seed)
    used: set[str] = set()

    def sender() -> str:
        while (surname := "".join(rng.choices(_SYLLABLES, k=4)).capitalize()) in used:
            pass
        used.add(surname)
        return f"{rng.choice(_FIRST)} {surname}"

    return _write(rng, count, sender)


_SYLLABLES = ["ka", "ri", "mu", "ta", "wan", "ti", "sa", "ni", "dar", "ja", "ya", "su", "har",
              "to", "pur", "na", "ma", "lin", "go", "ra", "di", "ning", "se", "tya"]


def _write(rng: random.Random, count: int, sender: Callable[[], str]) -> list[Message]:
    seen: set[str] = set()
    out: list[Message] = []
    while len(out) < count:
        profile = sender()
        first, _, rest = profile.partition(" ")
        name = rest if rest and first + " " in _HONORIFIC else profile
        templates = _TEMPLATES_ID if rng.random() < 0.7 else _TEMPLATES_EN
        text = _fill(rng, rng.choice(templates), name) + rng.choice(_EXTRAS)
        if rng.random() < 0.05:
            text += rng.choice(_NON_ASCII)
        if rng.random() < 0.3:
            text = text.lower()
        if text not in seen:
            seen.add(text)
            out.append(Message(text, (profile,)))
    return out


# -- the code measured -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Version:
    """One version of ``mask`` and ``classify``."""

    label: str
    mask: Callable[..., Any]
    classify: Callable[[Any], Any]


def current() -> Version:
    return Version("current", masking.mask, assist.classify)


def baseline(revision: str = BASELINE) -> Version | None:
    """``core/masking.py`` and ``core/assist.py`` as they were at ``revision``,
    loaded as modules of their own; None when git cannot show them (as at a
    revision where masking is already the ``core/masking/`` package)."""
    sources = {}
    for name in ("masking", "assist"):
        shown = subprocess.run(["git", "show", f"{revision}:lawhub_actors/core/{name}.py"],
                               cwd=REPO, capture_output=True, text=True, check=False)
        if shown.returncode != 0:
            return None
        sources[name] = shown.stdout
    old_masking = _load("bench_baseline_masking", sources["masking"])
    importing = "from lawhub_actors.core.masking import MaskedText"
    if importing not in sources["assist"]:
        raise RuntimeError(f"{revision}'s assist.py does not import MaskedText as expected")
    old_assist = _load("bench_baseline_assist",
                       sources["assist"].replace(importing, "from bench_baseline_masking import "
                                                            "MaskedText"))
    return Version(f"baseline {revision}", old_masking.mask, old_assist.classify)


def _load(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def _outcome(version: Version, message: Message) -> tuple[object, ...]:
    masked = version.mask(message.text, names=message.names)
    result = version.classify(masked)
    return (masked.text, dict(masked.counts), result.intent, result.urgency, result.confidence,
            result.reasons)


def check_same(versions: Sequence[Version], batch: Sequence[Message]) -> None:
    """Every version masks and classifies every message the same way."""
    first, *others = versions
    for message in batch:
        expected = _outcome(first, message)
        for other in others:
            if _outcome(other, message) != expected:
                raise AssertionError(f"{other.label} differs from {first.label} on "
                                     f"{message.text!r}")


def _mask_pass(version: Version, batch: Sequence[Message]) -> float:
    mask = version.mask
    started = time.process_time()
    for message in batch:
        mask(message.text, names=message.names)
    return time.process_time() - started


def _classify_pass(version: Version, masked: Sequence[Any]) -> float:
    classify = version.classify
    started = time.process_time()
    for text in masked:
        classify(text)
    return time.process_time() - started


def run(count: int = MESSAGES, repeats: int = REPEATS, against: str | None = BASELINE) -> Figures:
    batch = messages(count)
    versions = [current()]
    old = baseline(against) if against else None
    if old is not None:
        versions.insert(0, old)
        check_same(versions, batch)
    masked = {v.label: [v.mask(m.text, names=m.names) for m in batch] for v in versions}
    mask_s: dict[str, list[float]] = {v.label: [] for v in versions}
    classify_s: dict[str, list[float]] = {v.label: [] for v in versions}
    for repeat in range(repeats):
        turn = versions[repeat % len(versions):] + versions[: repeat % len(versions)]
        for version in turn:
            mask_s[version.label].append(_mask_pass(version, batch))
            classify_s[version.label].append(_classify_pass(version, masked[version.label]))

    # Senders never seen before, one message each: nothing about them is cached yet.
    new_senders = strangers(count)
    first_sight_s: dict[str, float] = {}
    for version in versions:
        re.purge()  # nor compiled by the other version
        first_sight_s[version.label] = _mask_pass(version, new_senders)

    figures: Figures = {
        "messages (distinct texts)": len(batch),
        "non-ASCII messages": sum(not m.text.isascii() for m in batch),
        "passes per version": repeats,
    }
    medians: dict[tuple[str, str], float] = {}
    for version in versions:
        for step, seconds in (("mask", mask_s), ("classify", classify_s)):
            per_message = [s / len(batch) * 1e6 for s in seconds[version.label]]
            medians[step, version.label] = statistics.median(per_message)
            figures[f"{version.label}: {step}, CPU µs per message, median"] = round(
                statistics.median(per_message), 1)
            figures[f"{version.label}: {step}, CPU µs per message, min-max"] = spread(
                per_message, digits=1)
        figures[f"{version.label}: mask, one message from each of {count:,} new senders, "
                "CPU µs per message (one pass)"] = round(
            first_sight_s[version.label] / len(new_senders) * 1e6, 1)
        both = medians["mask", version.label] + medians["classify", version.label]
        figures[f"{version.label}: mask + classify, CPU µs per message"] = round(both, 1)
    if old is not None:
        figures["results identical to the baseline (every message)"] = "yes"
        for step in ("mask", "classify"):
            ratio = medians[step, "current"] / medians[step, old.label]
            figures[f"current / baseline: {step}, CPU time ratio"] = round(ratio, 2)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.core_cost")
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--against", default=BASELINE,
                        help="git revision to compare with ('' for none); default %(default)s")
    parser.add_argument("--profile", action="store_true",
                        help="instead of timing, print a cProfile of the current code")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.messages)
        return
    print_section(sys.modules[__name__], run(args.messages, args.repeats, args.against or None))


def profile(count: int) -> None:
    batch = messages(count)
    mask, classify = masking.mask, assist.classify
    profiler = cProfile.Profile()
    profiler.enable()
    for message in batch:
        classify(mask(message.text, names=message.names))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
