"""Who writes what in the demo: clients of several law firms and their lawyers.

Pure apart from the random source: :class:`Scenario` hands out the next
client message (:class:`Inbound`: text in Indonesian or English, a photo,
a PDF, and exactly once a PDF carrying the EICAR test string) and a
lawyer's answer to a client (the body of ``POST /api/v1/messages``: text
in the client's language, sometimes an approved template). The driver
(:mod:`lawhub_actors.simulator.driver`) decides when and does the I/O.

Every firm gets a new client in the first ticks, so all tenants show
traffic at once; afterwards each firm keeps at most ``customers_per_firm``
clients, who keep writing (the demo's state stays bounded).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lawhub_actors.settings import Settings
from lawhub_actors.simulator import samples
from lawhub_actors.simulator.clamav import EICAR

__all__ = ["Customer", "Firm", "Inbound", "Scenario", "TemplateRef", "firms_of"]

Language = Literal["id", "en"]
Topic = Literal["text", "urgent", "media"]
MediaKind = Literal["text", "image", "document"]

NAMES: Mapping[Language, tuple[str, ...]] = {
    "id": ("Budi Santoso", "Siti Rahmawati", "Agus Wijaya", "Dewi Lestari", "Rizky Pratama",
           "Putri Handayani", "Hendra Gunawan", "Nur Aisyah", "Yohanes Sitorus", "Made Sudarsana"),
    "en": ("Sarah Mitchell", "James O'Connor", "Emily Tan", "Daniel Brooks", "Priya Nair"),
}
OPENINGS: Mapping[Language, tuple[str, ...]] = {
    "id": (
        "Selamat pagi, saya ingin konsultasi soal sengketa tanah warisan orang tua saya.",
        "Permisi Pak, saya di-PHK tanpa pesangon setelah 8 tahun bekerja. Apakah bisa dibantu?",
        "Halo, saya mau tanya prosedur cerai dan hak asuh anak.",
        "Tetangga membangun pagar di atas tanah kami. Bagaimana langkah hukumnya?",
        "Gaji saya sudah tiga bulan tidak dibayar oleh perusahaan.",
        "Saya ditipu dalam jual beli mobil online, uangnya sudah ditransfer.",
        "Besok saya ada sidang mediasi, apa saja yang perlu saya bawa?",
        "Saya ditagih debt collector pinjol setiap hari, padahal sudah dicicil.",
    ),
    "en": (
        "Hello, I need help with my employment contract; the non-compete clause worries me.",
        "Good afternoon, my landlord refuses to return my deposit.",
        "Hi, I was dismissed without notice after five years. Do I have a case?",
        "I'd like advice on a shareholder agreement for my new company.",
        "The court hearing is tomorrow and I still have no lawyer.",
    ),
}
URGENT: Mapping[Language, tuple[str, ...]] = {
    "id": (
        "URGENT: saya ditangkap polisi, sekarang di Polsek. Tolong kirim pengacara.",
        "Tolong Pak, suami saya ditangkap polisi tadi malam dan belum boleh dijenguk.",
    ),
    "en": ("URGENT: my brother was arrested at the airport this morning.",),
}
FOLLOW_UPS: Mapping[Language, tuple[str, ...]] = {
    "id": (
        "Terima kasih, Pak. Kapan saya bisa datang ke kantor?",
        "Berapa biaya konsultasinya?",
        "Baik, dokumennya saya kirim sebentar lagi.",
        "Apakah perlu membawa saksi?",
        "Pihak perusahaan mengirim surat lagi hari ini.",
    ),
    "en": (
        "Thank you! When can we meet?",
        "How much would the first consultation cost?",
        "I'll send the documents in a moment.",
        "They sent another letter today.",
    ),
}
CAPTIONS: Mapping[Language, tuple[str, ...]] = {
    "id": ("Foto sertifikat tanahnya", "Ini surat panggilan yang saya terima",
           "Foto surat peringatan dari kantor"),
    "en": ("Photo of the contract, page 1", "Here is the notice I received"),
}
DOCUMENTS: Mapping[Language, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "id": (
        ("kontrak_kerja.pdf", ("PERJANJIAN KERJA WAKTU TERTENTU", "Pasal 1 - Jabatan dan tugas",
                               "Pasal 2 - Upah dan tunjangan")),
        ("akta_jual_beli.pdf", ("AKTA JUAL BELI", "Nomor: 45/2019",
                                "Objek: sebidang tanah SHM No. 1234")),
        ("surat_kuasa.pdf", ("SURAT KUASA KHUSUS", "Yang bertanda tangan di bawah ini",
                             "memberi kuasa kepada advokat")),
    ),
    "en": (
        ("employment_contract.pdf", ("EMPLOYMENT AGREEMENT", "Clause 12 - Non-competition",
                                     "Clause 14 - Termination")),
        ("tenancy_agreement.pdf", ("TENANCY AGREEMENT", "Deposit: two months' rent",
                                   "Return of deposit within 30 days")),
    ),
}
EICAR_DOCUMENT = ("somasi_pihak_lawan.pdf", "Dokumen dari pihak lawan, mohon dicek",
                  ("SOMASI", "Kepada Yth. Bapak/Ibu", "Dengan hormat,"))
REPLIES: Mapping[Language, Mapping[Topic, tuple[str, ...]]] = {
    "id": {
        "text": (
            "Selamat siang, terima kasih sudah menghubungi kami. Boleh diceritakan "
            "kronologinya secara singkat?",
            "Bisa, kami jadwalkan konsultasi Kamis pukul 10.00 di kantor kami.",
            "Untuk perkara seperti ini, mohon siapkan KTP dan dokumen pendukungnya.",
        ),
        "urgent": (
            "Pesan Anda sudah kami terima. Advokat jaga kami segera ke sana; jangan "
            "menandatangani apa pun sebelum didampingi.",
        ),
        "media": (
            "Dokumennya sudah kami terima, terima kasih. Kami pelajari dan kabari hari ini.",
            "Fotonya jelas, terima kasih. Boleh kirim juga halaman berikutnya?",
        ),
    },
    "en": {
        "text": (
            "Thank you for reaching out. Could you tell us briefly what happened?",
            "We can meet on Thursday at 10:00 at our office.",
            "Please bring your ID and any letters you received.",
        ),
        "urgent": (
            "We have your message. Our duty lawyer is on the way; please don't sign "
            "anything until they are with you.",
        ),
        "media": (
            "We received your document, thank you. We'll review it today.",
            "Thanks, the photo is readable. Could you send the next page too?",
        ),
    },
}
TEMPLATE_PARAMS: Mapping[Language, tuple[str, ...]] = {
    "id": ("Kamis 10.00 WIB", "perkara 123/Pdt.G/2026"),
    "en": ("Thursday 10:00", "case 123/Pdt.G/2026"),
}
TEMPLATE_SHARE = 0.2  # of lawyers' answers
URGENT_SHARE = 0.15  # of new clients' first messages
ENGLISH_SHARE = 0.3  # of clients
NEW_CLIENT_SHARE = 0.3  # of messages, while a firm has room for one more client


@dataclass(frozen=True, slots=True)
class TemplateRef:
    name: str
    language: str
    params: int


@dataclass(frozen=True, slots=True)
class Firm:
    """A tenant as the demo drives it: its API token, numbers and usable templates."""

    tenant: str
    token: str
    numbers: tuple[str, ...]
    templates: tuple[TemplateRef, ...]


@dataclass(slots=True)
class Customer:
    firm: Firm
    number: str  # the firm's phone_number_id this client writes to
    wa_id: str
    name: str
    language: Language
    topic: Topic = "text"  # what the lawyer's next answer is about


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message a client sends: text, or a file with its caption (``text``)."""

    customer: Customer
    kind: MediaKind
    text: str
    data: bytes = b""
    mime_type: str = ""
    filename: str | None = None


def firms_of(settings: Settings, tokens: Mapping[str, str]) -> list[Firm]:
    """The config's tenants that have a number, with their approved templates fit for an
    answer (authentication templates are one-time codes, not answers)."""
    return [
        Firm(
            tenant.id,
            tokens[tenant.id],
            tuple(number.id for number in tenant.phone_numbers),
            tuple(
                TemplateRef(t.name, t.language, t.params)
                for t in settings.templates
                if t.tenant == tenant.id and t.status == "approved"
                and t.category != "authentication"
            ),
        )
        for tenant in settings.tenants
        if tenant.phone_numbers
    ]


class Scenario:
    """The next client message and a lawyer's answer, drawn from ``rng``."""

    def __init__(
        self,
        firms: Sequence[Firm],
        rng: random.Random,
        *,
        customers_per_firm: int = 6,
        eicar_at: int = 4,
    ) -> None:
        if not firms:
            raise ValueError("the demo needs at least one tenant with a phone number")
        self._firms = list(firms)
        self._rng = rng
        self._room = customers_per_firm
        self._eicar_at = eicar_at
        self._ticks = 0
        self._customers: dict[str, list[Customer]] = {f.tenant: [] for f in self._firms}
        self._wa_ids: set[str] = set()

    def next_inbound(self) -> Inbound:
        tick, self._ticks = self._ticks, self._ticks + 1
        if tick < len(self._firms):  # every firm at once
            return self._opening(self._new_customer(self._firms[tick]))
        firm = self._rng.choice(self._firms)
        existing = self._customers[firm.tenant]
        if tick == self._eicar_at:
            return self._eicar(self._rng.choice(existing) if existing else self._new_customer(firm))
        if not existing or (len(existing) < self._room
                            and self._rng.random() < NEW_CLIENT_SHARE):
            return self._opening(self._new_customer(firm))
        customer = self._rng.choice(existing)
        kind = self._rng.choices(("text", "image", "document"), weights=(6, 2, 1))[0]
        if kind == "image":
            return self._photo(customer)
        if kind == "document":
            return self._document(customer)
        customer.topic = "text"
        return Inbound(customer, "text", self._rng.choice(FOLLOW_UPS[customer.language]))

    def reply(self, customer: Customer) -> dict[str, Any]:
        """A lawyer's answer: the body of ``POST /api/v1/messages``."""
        body: dict[str, Any] = {"phone_number_id": customer.number, "to": customer.wa_id}
        topic, customer.topic = customer.topic, "text"
        templates = _prefer(customer.firm.templates, customer.language)
        if templates and self._rng.random() < TEMPLATE_SHARE:
            template = self._rng.choice(templates)
            return {**body, "type": "template", "template": {
                "name": template.name, "language": template.language,
                "params": self._params(customer, template.params)}}
        text = self._rng.choice(REPLIES[customer.language][topic])
        return {**body, "type": "text", "text": {"body": text}}

    def _new_customer(self, firm: Firm) -> Customer:
        language: Language = "en" if self._rng.random() < ENGLISH_SHARE else "id"
        wa_id = ""
        while not wa_id or wa_id in self._wa_ids:
            wa_id = f"62812{self._rng.randrange(10**8):08d}"
        self._wa_ids.add(wa_id)
        customer = Customer(firm, self._rng.choice(firm.numbers), wa_id,
                            self._rng.choice(NAMES[language]), language)
        self._customers[firm.tenant].append(customer)
        return customer

    def _opening(self, customer: Customer) -> Inbound:
        if self._rng.random() < URGENT_SHARE:
            customer.topic = "urgent"
            return Inbound(customer, "text", self._rng.choice(URGENT[customer.language]))
        return Inbound(customer, "text", self._rng.choice(OPENINGS[customer.language]))

    def _photo(self, customer: Customer) -> Inbound:
        customer.topic = "media"
        return Inbound(customer, "image", self._rng.choice(CAPTIONS[customer.language]),
                       samples.document_photo(self._rng), "image/jpeg")

    def _document(self, customer: Customer) -> Inbound:
        customer.topic = "media"
        filename, lines = self._rng.choice(DOCUMENTS[customer.language])
        return Inbound(customer, "document", "", samples.pdf(lines), "application/pdf", filename)

    def _eicar(self, customer: Customer) -> Inbound:
        customer.topic = "media"
        filename, caption, lines = EICAR_DOCUMENT
        return Inbound(customer, "document", caption, samples.pdf(lines, comment=EICAR),
                       "application/pdf", filename)

    def _params(self, customer: Customer, count: int) -> list[str]:
        pool = (customer.name.split()[0], *TEMPLATE_PARAMS[customer.language])
        return [pool[i % len(pool)] for i in range(count)]


def _prefer(templates: Iterable[TemplateRef], language: str) -> list[TemplateRef]:
    """The templates in ``language``, or all of them when none is."""
    every = list(templates)
    return [t for t in every if t.language == language] or every
