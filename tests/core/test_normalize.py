"""The normalizer: Meta's webhook bodies → events, quarantine and warnings."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lawhub_actors.core.events import (
    UNKNOWN_ERROR_CODE,
    AccountErrors,
    InboundMessage,
    MessageType,
    OtherChange,
    PreferenceUpdate,
    QuarantineReason,
    StatusKind,
    StatusUpdate,
)
from lawhub_actors.core.limits import MAX_DEPTH, TIMESTAMP_MAX, TIMESTAMP_MIN
from lawhub_actors.core.normalize import Batch, normalize
from lawhub_actors.core.payload import PayloadError, parse, parse_document
from tests.payloads import (
    FIRM_A_PNID,
    FIRM_A_SHARED_PNID,
    FIRM_B_PNID,
    UNKNOWN_PNID,
    WABA_A,
    dumps,
    load,
    names,
    raw,
    tenant_of,
)

C1, C2, C4, C5, C6, C7 = (f"628123450000{n}" for n in (1, 2, 4, 5, 6, 7))
BSUID = "ID.1502576394655843"
T0 = 1767261600


def run(document: Any) -> Batch:
    return normalize(parse(dumps(document)), tenant_of)


def run_fixture(name: str) -> Batch:
    return normalize(parse(raw(name)), tenant_of)


def get(obj: Any, dotted: str) -> Any:
    """``media.voice``, ``details.removed``, ``errors.0.code``."""
    for part in dotted.split("."):
        if isinstance(obj, Mapping):
            obj = obj[part]
        elif isinstance(obj, tuple | list):
            obj = obj[int(part)]
        else:
            obj = getattr(obj, part)
    return obj


# -- the table: every fixture, what it must become ---------------------------


@dataclass
class Expect:
    events: list[tuple[type, dict[str, Any]]]
    quarantined: list[QuarantineReason] = field(default_factory=list)
    warnings: int = 0


def msg(**fields: Any) -> tuple[type, dict[str, Any]]:
    return (InboundMessage, {"tenant": "firm-a", "phone_number_id": FIRM_A_PNID} | fields)


def sts(**fields: Any) -> tuple[type, dict[str, Any]]:
    return (StatusUpdate, {"tenant": "firm-a", "phone_number_id": FIRM_A_PNID} | fields)


M = MessageType
S = StatusKind
BUDI = {"customer": C1, "wa_id": C1, "profile_name": "Budi Santoso"}

EXPECTED: dict[str, Expect] = {
    "text": Expect(
        [
            msg(
                **BUDI,
                type=M.TEXT,
                text="Selamat pagi, saya ingin konsultasi soal kontrak sewa.",
                timestamp=T0 + 1,
                context=None,
                referral=None,
                media=None,
                errors=(),
            )
        ]
    ),
    "text_reply": Expect(
        [
            msg(
                **BUDI,
                type=M.TEXT,
                text="Baik, jam 10 bisa.",
                **{"context.sender": "628111000001", "context.forwarded": False},
            )
        ]
    ),
    "text_forwarded": Expect(
        [msg(type=M.TEXT, **{"context.forwarded": True, "context.message_id": None})]
    ),
    "text_frequently_forwarded": Expect(
        [msg(type=M.TEXT, **{"context.frequently_forwarded": True, "context.forwarded": False})]
    ),
    "text_emoji_accents": Expect(
        [
            msg(
                customer=C2,
                profile_name="Siti Nurhaliza \u2728",
                type=M.TEXT,
                text="Terima kasih \U0001f64f Pak! Caf\u00e9 \u201cSinar Jaya\u201d di S\u00e3o Paulo"
                " \u2014 na\u00efve fa\u00e7ade, \u00f1, \u00fc, \u1e9e \U0001f600\U0001f44d\U0001f3fd",
            )
        ]
    ),
    "image_caption": Expect(
        [
            msg(
                **BUDI,
                type=M.IMAGE,
                text="Foto akta jual beli halaman 1",
                **{
                    "media.id": "1479537139650973",
                    "media.mime_type": "image/jpeg",
                    "media.caption": "Foto akta jual beli halaman 1",
                    "media.sha256": "rwCQU+e7QAqZoYmjSpVpG0vVX4cALJiQO5qN9AT2oDs=",
                },
            )
        ]
    ),
    "video": Expect(
        [msg(type=M.VIDEO, text="Rekaman kejadian", **{"media.mime_type": "video/mp4"})]
    ),
    "audio": Expect([msg(type=M.AUDIO, text=None, **{"media.voice": False})]),
    "voice_note": Expect(
        [
            msg(
                type=M.AUDIO,
                text=None,
                **{"media.voice": True, "media.mime_type": "audio/ogg; codecs=opus"},
            )
        ]
    ),
    "document_filename": Expect(
        [
            msg(
                type=M.DOCUMENT,
                text="Surat kuasa",
                **{"media.filename": "surat-kuasa-2026.pdf", "media.mime_type": "application/pdf"},
            )
        ]
    ),
    "sticker_static": Expect([msg(type=M.STICKER, text=None, **{"media.animated": False})]),
    "sticker_animated": Expect([msg(type=M.STICKER, **{"media.animated": True})]),
    "location_current": Expect(
        [
            msg(
                type=M.LOCATION,
                text=None,
                **{
                    "details.latitude": -6.2087634,
                    "details.longitude": 106.845599,
                    "details.name": None,
                },
            )
        ]
    ),
    "location_named": Expect(
        [
            msg(
                type=M.LOCATION,
                text="Pengadilan Negeri Jakarta Pusat, Jl. Bungur Besar Raya No.24, Jakarta",
                **{
                    "details.name": "Pengadilan Negeri Jakarta Pusat",
                    "details.url": "https://maps.google.com/?cid=1000000000000000001",
                },
            )
        ]
    ),
    "contacts": Expect(
        [
            msg(
                type=M.CONTACTS,
                text="Andi Wijaya, Rina",
                **{
                    "details.contacts.0.phones.0.wa_id": "6281234500009",
                    "details.contacts.1.emails.0.email": "rina@example.com",
                },
            )
        ]
    ),
    "interactive_button_reply": Expect(
        [
            msg(
                type=M.INTERACTIVE,
                text="Ya, hadir",
                **{
                    "details.interactive_type": "button_reply",
                    "details.reply_id": "confirm_appointment",
                },
            )
        ]
    ),
    "interactive_list_reply": Expect(
        [
            msg(
                type=M.INTERACTIVE,
                text="Hukum Keluarga",
                **{
                    "details.interactive_type": "list_reply",
                    "details.reply_id": "area_family",
                    "details.description": "Perceraian, hak asuh, waris",
                },
            )
        ]
    ),
    "interactive_nfm_reply": Expect(
        [
            msg(
                type=M.INTERACTIVE,
                text="Sent",
                **{
                    "details.interactive_type": "nfm_reply",
                    "details.flow_name": "flow",
                    "details.response_json": '{"case_type":"sengketa_tanah","urgency":"high",'
                    '"flow_token":"AQAAAAACS5FpgQ_cAAAAAD0QI3s."}',
                },
            )
        ]
    ),
    "button": Expect(
        [msg(type=M.BUTTON, text="Jadwalkan ulang", **{"details.payload": "RESCHEDULE"})]
    ),
    "reaction": Expect(
        [
            msg(
                type=M.REACTION,
                text="\U0001f44d",
                **{"details.removed": False, "details.emoji": "\U0001f44d"},
            )
        ]
    ),
    "reaction_removed": Expect(
        [msg(type=M.REACTION, text=None, **{"details.removed": True, "details.emoji": None})]
    ),
    "reaction_removed_no_emoji": Expect(
        [msg(type=M.REACTION, text=None, **{"details.removed": True})]
    ),
    "order": Expect(
        [
            msg(
                type=M.ORDER,
                text="Paket konsultasi",
                **{
                    "details.catalog_id": "354160437058781",
                    "details.product_items.1.product_retailer_id": "REVIEW_KONTRAK",
                },
            )
        ]
    ),
    "referral_ctwa": Expect(
        [
            msg(
                type=M.TEXT,
                text="Halo, saya lihat iklan konsultasi gratis.",
                **{
                    "referral.source_type": "ad",
                    "referral.source_id": "120212345678900000",
                    "referral.headline": "Konsultasi Hukum Gratis",
                },
            )
        ]
    ),
    "system_user_changed_number": Expect(
        [
            msg(
                customer="6281234500003",
                profile_name=None,
                type=M.SYSTEM,
                **{
                    "details.system_type": "user_changed_number",
                    "details.new_wa_id": "6281234500010",
                },
            )
        ]
    ),
    "system_customer_identity_changed": Expect(
        [
            msg(
                customer="6281234500003",
                type=M.SYSTEM,
                text="User identity changed",
                **{
                    "details.system_type": "customer_identity_changed",
                    "details.identity.hash": "Sjvjlx8G6Z0=",
                },
            )
        ]
    ),
    "system_user_changed_user_id": Expect(
        [
            msg(
                customer=BSUID,
                wa_id=None,
                type=M.SYSTEM,
                **{"details.user_id": "ID.1502576394650000", "details.previous_user_id": BSUID},
            )
        ]
    ),
    "unsupported": Expect(
        [
            msg(
                type=M.UNSUPPORTED,
                text=None,
                **{
                    "details.unsupported_type": "poll_creation",
                    "errors.0.code": 131051,
                    "errors.0.details": "Message type is currently not supported.",
                },
            )
        ]
    ),
    "unknown_type": Expect(
        [
            msg(
                type=M.UNKNOWN,
                text=None,
                **{"details.raw_type": "hologram", "details.raw.frames": 24},
            )
        ],
        warnings=1,
    ),
    "unknown_type_request_welcome": Expect(
        [msg(type=M.UNKNOWN, **{"details.raw_type": "request_welcome"})], warnings=1
    ),
    "username_user": Expect(
        [msg(customer=BSUID, wa_id=None, user_id=BSUID, profile_name="Dewi Lestari", type=M.TEXT)]
    ),
    "user_id_with_wa_id": Expect(
        [
            (
                InboundMessage,
                {
                    "tenant": "firm-b",
                    "phone_number_id": FIRM_B_PNID,
                    "customer": C4,
                    "wa_id": C4,
                    "user_id": "ID.13491208655302741918",
                },
            )
        ]
    ),
    "two_customers_one_change": Expect(
        [
            msg(customer=C6, profile_name="Joko", text="Saya Joko."),
            msg(customer=C5, profile_name="Wati", text="Saya Wati."),
        ]
    ),
    "interactive_missing_with_value_errors": Expect(
        [
            msg(type=M.INTERACTIVE, text=None),
            (
                AccountErrors,
                {
                    "tenant": "firm-a",
                    "errors.0.code": 131000,
                    "errors.0.details": "Unsupported webhook payload",
                },
            ),
        ],
        warnings=1,
    ),
    "status_sent": Expect(
        [
            sts(
                status=S.SENT,
                recipient=C1,
                timestamp=T0 + 101,
                **{
                    "conversation.id": "7270432eae37498234f4444b35ffc5a1",
                    "conversation.origin_type": "service",
                    "conversation.expiration": T0 + 86400,
                    "pricing.pricing_model": "PMP",
                    "pricing.category": "utility",
                    "pricing.type": "regular",
                    "pricing.billable": True,
                },
            )
        ]
    ),
    "status_delivered": Expect(
        [
            sts(
                status=S.DELIVERED,
                **{"conversation.expiration": None, "pricing.pricing_model": "CBP"},
            )
        ]
    ),
    "status_read": Expect([sts(status=S.READ, conversation=None, pricing=None, errors=())]),
    "status_played": Expect([sts(status=S.PLAYED)]),
    "status_failed": Expect(
        [
            sts(
                status=S.FAILED,
                recipient=C7,
                **{"errors.0.code": 131026, "errors.0.title": "Message undeliverable"},
            )
        ]
    ),
    "status_failed_rate_limit": Expect(
        [(StatusUpdate, {"tenant": "firm-b", "status": S.FAILED, "errors.0.code": 130429})]
    ),
    "status_biz_opaque": Expect(
        [sts(status=S.SENT, biz_opaque_callback_data="lh:msg_01JH0000000000000000000001")]
    ),
    "status_no_conversation_v24": Expect(
        [
            sts(
                status=S.SENT,
                conversation=None,
                **{"pricing.billable": False, "pricing.type": "free_customer_service"},
            )
        ]
    ),
    "status_user_id_recipient": Expect(
        [sts(status=S.DELIVERED, recipient=BSUID, recipient_user_id=BSUID)]
    ),
    "status_unknown_kind": Expect([sts(status=S.UNKNOWN, raw_status="deleted")], warnings=1),
    "user_preferences_stop": Expect(
        [
            (
                PreferenceUpdate,
                {
                    "tenant": "firm-a",
                    "customer": C1,
                    "value": "stop",
                    "category": "marketing_messages",
                    "timestamp": T0 + 200,
                },
            )
        ]
    ),
    "user_preferences_resume": Expect(
        [(PreferenceUpdate, {"tenant": "firm-b", "customer": C4, "value": "resume"})]
    ),
    "account_errors": Expect(
        [
            (
                AccountErrors,
                {"tenant": "firm-b", "phone_number_id": FIRM_B_PNID, "errors.0.code": 131045},
            )
        ]
    ),
    "message_template_status_update": Expect(
        [
            (
                OtherChange,
                {
                    "tenant": None,
                    "phone_number_id": None,
                    "waba_id": WABA_A,
                    "field": "message_template_status_update",
                    "value.event": "APPROVED",
                },
            )
        ]
    ),
    "phone_number_quality_update": Expect(
        [
            (
                OtherChange,
                {
                    "tenant": None,
                    "field": "phone_number_quality_update",
                    "value.event": "THROUGHPUT_UPGRADE",
                },
            )
        ]
    ),
    "account_update": Expect(
        [
            (
                OtherChange,
                {"tenant": None, "field": "account_update", "value.event": "ACCOUNT_RESTRICTION"},
            )
        ]
    ),
    "unknown_phone_number": Expect([], [QuarantineReason.UNKNOWN_PHONE_NUMBER], warnings=1),
    "batch_mixed": Expect(
        [
            msg(customer=C1, type=M.TEXT, text="Pesan pertama."),
            msg(customer=C1, type=M.IMAGE),
            (
                StatusUpdate,
                {
                    "tenant": "firm-a",
                    "phone_number_id": FIRM_A_SHARED_PNID,
                    "status": S.SENT,
                    "recipient": C2,
                },
            ),
            (
                StatusUpdate,
                {"tenant": "firm-a", "phone_number_id": FIRM_A_SHARED_PNID, "status": S.DELIVERED},
            ),
            (StatusUpdate, {"tenant": "firm-b", "phone_number_id": FIRM_B_PNID, "status": S.READ}),
            (InboundMessage, {"tenant": "firm-b", "customer": C4, "text": "Pesan untuk firma B."}),
        ]
    ),
    "batch_with_unknown_number": Expect(
        [msg(customer=C1, text="Nomor yang dikenal.")],
        [QuarantineReason.UNKNOWN_PHONE_NUMBER],
        warnings=1,
    ),
}


def test_every_fixture_has_an_expectation_and_there_are_at_least_40():
    assert sorted(EXPECTED) == names()
    assert len(names()) >= 40


@pytest.mark.parametrize("name", names())
def test_fixture_normalizes_to_the_expected_events(name: str):
    expect = EXPECTED[name]
    batch = run_fixture(name)

    assert [type(e) for e in batch.events] == [cls for cls, _ in expect.events]
    for event, (_, fields) in zip(batch.events, expect.events, strict=True):
        for dotted, wanted in fields.items():
            assert get(event, dotted) == wanted, f"{name}: {dotted}"
    assert [q.reason for q in batch.quarantined] == expect.quarantined
    assert len(batch.warnings) == expect.warnings, batch.warnings


@pytest.mark.parametrize("name", names())
def test_fixture_events_are_immutable_hashable_and_serialisable(name: str):
    for event in run_fixture(name).events:
        hash(event)
        json.dumps(dataclasses.asdict(event))
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.tenant = "someone-else"  # type: ignore[misc]


# -- targeted behaviour ------------------------------------------------------


def test_customer_key_is_user_id_when_wa_id_is_empty():
    (event,) = run_fixture("username_user").events
    assert isinstance(event, InboundMessage)
    assert (event.customer, event.wa_id, event.user_id) == (BSUID, None, BSUID)


def test_customer_key_is_user_id_from_the_contact_when_the_message_names_nobody():
    doc = load("username_user")
    message = doc["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["from"], message["from_user_id"]
    (event,) = run(doc).events
    assert isinstance(event, InboundMessage)
    assert event.customer == BSUID
    assert event.profile_name == "Dewi Lestari"


def test_customer_key_prefers_wa_id_when_both_are_present():
    (event,) = run_fixture("user_id_with_wa_id").events
    assert isinstance(event, InboundMessage)
    assert event.customer == C4


def test_status_recipient_falls_back_to_recipient_user_id():
    (event,) = run_fixture("status_user_id_recipient").events
    assert isinstance(event, StatusUpdate)
    assert event.recipient == BSUID


def test_contacts_are_matched_to_messages_by_wa_id_not_by_position():
    first, second = run_fixture("two_customers_one_change").events
    assert isinstance(first, InboundMessage) and isinstance(second, InboundMessage)
    assert (first.customer, first.profile_name) == (C6, "Joko")
    assert (second.customer, second.profile_name) == (C5, "Wati")


def test_unknown_message_type_becomes_unknown_with_a_warning_and_keeps_the_raw_type():
    batch = run_fixture("unknown_type")
    (event,) = batch.events
    assert isinstance(event, InboundMessage)
    assert event.type is MessageType.UNKNOWN
    assert event.details["raw_type"] == "hologram"
    assert batch.warnings == (
        "entry[0].changes[0].messages[0]: unknown message type 'hologram'; kept as 'unknown'",
    )


def test_message_level_errors_are_kept_on_the_message():
    (event,) = run_fixture("unsupported").events
    assert isinstance(event, InboundMessage)
    assert [e.code for e in event.errors] == [131051]


def test_unknown_phone_number_is_quarantined_and_yields_no_event():
    batch = run_fixture("unknown_phone_number")
    assert batch.events == ()
    (q,) = batch.quarantined
    assert q.reason is QuarantineReason.UNKNOWN_PHONE_NUMBER
    assert q.phone_number_id == UNKNOWN_PNID
    assert q.field == "messages"
    assert q.change == load("unknown_phone_number")["entry"][0]["changes"][0]


def test_unknown_phone_number_does_not_hold_back_a_known_one_in_the_same_body():
    batch = run_fixture("batch_with_unknown_number")
    assert [e.tenant for e in batch.events] == ["firm-a"]
    assert [q.phone_number_id for q in batch.quarantined] == [UNKNOWN_PNID]


def test_messages_change_without_phone_number_id_is_quarantined():
    doc = load("text")
    del doc["entry"][0]["changes"][0]["value"]["metadata"]
    batch = run(doc)
    assert batch.events == ()
    assert [q.reason for q in batch.quarantined] == [QuarantineReason.NO_PHONE_NUMBER_ID]


def test_waba_level_change_passes_through_without_a_tenant():
    (event,) = run_fixture("account_update").events
    assert isinstance(event, OtherChange)
    assert (event.tenant, event.phone_number_id, event.waba_id) == (None, None, "102290129340399")


def test_unprocessed_field_of_a_known_number_passes_through_with_its_tenant():
    doc = load("text")
    doc["entry"][0]["changes"][0]["field"] = "smb_message_echoes"
    (event,) = run(doc).events
    assert isinstance(event, OtherChange)
    assert (event.tenant, event.field) == ("firm-a", "smb_message_echoes")


def test_value_level_errors_follow_the_messages_of_their_change():
    events = run_fixture("interactive_missing_with_value_errors").events
    assert [type(e) for e in events] == [InboundMessage, AccountErrors]


def test_dedupe_keys_are_wamid_and_wamid_colon_status():
    (inbound,) = run_fixture("text").events
    sent, delivered = run_fixture("batch_mixed").events[2:4]
    assert isinstance(inbound, InboundMessage)
    assert isinstance(sent, StatusUpdate) and isinstance(delivered, StatusUpdate)
    assert inbound.dedupe_key == inbound.wamid
    assert sent.dedupe_key == f"{sent.wamid}:sent"
    assert delivered.dedupe_key == f"{sent.wamid}:delivered"


def test_unknown_status_keeps_its_raw_string_in_the_dedupe_key():
    (event,) = run_fixture("status_unknown_kind").events
    assert isinstance(event, StatusUpdate)
    assert event.dedupe_key.endswith(":deleted")


def test_media_sha256_is_kept_exactly_as_sent():
    (event,) = run_fixture("voice_note").events
    assert isinstance(event, InboundMessage) and event.media is not None
    assert event.media.sha256 == "m04pFf2ERdaopTyFkGPA0+bX3i+YY2dYgVFwOgDLSDI="


def test_malformed_message_is_quarantined_alone_and_the_rest_of_the_change_proceeds():
    doc = load("two_customers_one_change")
    messages = doc["entry"][0]["changes"][0]["value"]["messages"]
    messages[0]["text"] = "Rahasia klien: bukan objek"  # text must be an object
    batch = run(doc)
    assert [e.customer for e in batch.events if isinstance(e, InboundMessage)] == [C5]
    (q,) = batch.quarantined
    assert q.reason is QuarantineReason.INVALID_MESSAGE
    assert q.change["value"]["messages"] == [messages[0]]
    assert q.change["value"]["metadata"]["phone_number_id"] == FIRM_A_PNID
    assert batch.warnings == (
        "entry[0].changes[0].messages[0]: invalid message (text); quarantined",
    )


def test_message_without_any_customer_key_is_quarantined():
    doc = load("system_user_changed_number")
    del doc["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    batch = run(doc)
    assert batch.events == ()
    assert [q.reason for q in batch.quarantined] == [QuarantineReason.NO_CUSTOMER]


def test_missing_timestamp_becomes_zero_with_a_warning():
    doc = load("text")
    del doc["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"]
    batch = run(doc)
    (event,) = batch.events
    assert isinstance(event, InboundMessage)
    assert event.timestamp == 0
    assert batch.warnings == (
        "entry[0].changes[0].messages[0]: timestamp missing; 0 used",
    )


def test_json_numbers_where_meta_sends_strings_are_accepted():
    doc = load("text")
    value = doc["entry"][0]["changes"][0]["value"]
    value["metadata"]["phone_number_id"] = int(FIRM_A_PNID)
    value["contacts"][0]["wa_id"] = int(C1)
    value["messages"][0]["from"] = int(C1)
    value["messages"][0]["timestamp"] = T0 + 1
    batch = run(doc)
    (event,) = batch.events
    assert isinstance(event, InboundMessage)
    assert (event.tenant, event.customer, event.timestamp) == ("firm-a", C1, T0 + 1)
    assert event.profile_name == "Budi Santoso"
    assert batch.warnings == ()


def test_user_preferences_in_the_flat_form_are_read_too():
    doc = load("user_preferences_stop")
    value = doc["entry"][0]["changes"][0]["value"]
    (pref,) = value.pop("user_preferences")
    value.update(pref)
    (event,) = run(doc).events
    assert isinstance(event, PreferenceUpdate)
    assert (event.customer, event.value) == (C1, "stop")


def test_unknown_preference_value_passes_through_with_a_warning():
    doc = load("user_preferences_stop")
    doc["entry"][0]["changes"][0]["value"]["user_preferences"][0]["value"] = "snooze"
    batch = run(doc)
    (event,) = batch.events
    assert isinstance(event, OtherChange)
    assert event.field == "user_preferences" and event.value["value"] == "snooze"
    assert len(batch.warnings) == 1


def test_error_without_a_code_gets_the_unknown_code():
    doc = load("status_failed")
    del doc["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"]
    (event,) = run(doc).events
    assert isinstance(event, StatusUpdate)
    assert event.errors[0].code == UNKNOWN_ERROR_CODE


def test_thousand_update_batch_keeps_payload_order():
    pnids = [FIRM_A_PNID, FIRM_B_PNID, FIRM_A_SHARED_PNID, FIRM_B_PNID]
    expected: list[str] = []
    entries = []
    for e, pnid in enumerate(pnids):
        changes = []
        for c in range(5):
            base = (e * 5 + c) * 50
            messages = [
                {
                    "from": C1,
                    "id": f"wamid.in.{base + k:04d}",
                    "timestamp": str(T0 + k),
                    "type": "text",
                    "text": {"body": f"pesan {k}"},
                }
                for k in range(25)
            ]
            statuses = [
                {
                    "id": f"wamid.out.{base + 25 + k:04d}",
                    "status": "delivered",
                    "timestamp": str(T0 + k),
                    "recipient_id": C2,
                }
                for k in range(25)
            ]
            expected += [m["id"] for m in messages] + [s["id"] for s in statuses]
            changes.append(
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {
                            "display_phone_number": "628111000001",
                            "phone_number_id": pnid,
                        },
                        "contacts": [{"profile": {"name": "Budi"}, "wa_id": C1}],
                        "messages": messages,
                        "statuses": statuses,
                    },
                }
            )
        entries.append({"id": WABA_A, "changes": changes})
    doc = {"object": "whatsapp_business_account", "entry": entries}

    batch = run(doc)

    assert len(expected) == 1000
    assert [e.wamid for e in batch.events if isinstance(e, InboundMessage | StatusUpdate)] == (
        expected
    )
    assert [e.tenant for e in batch.events[::250]] == ["firm-a", "firm-b", "firm-a", "firm-b"]
    assert batch.quarantined == () and batch.warnings == ()


# -- parse: the only errors, and what they say -------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "not_json"),
        (b"{not json", "not_json"),
        (b"\xff\xfe\x00garbage", "not_json"),
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b"[1, 2]", "bad_shape"),
        (b'"whatsapp_business_account"', "bad_shape"),
        (b"{}", "wrong_object"),
        (b'{"object": "page", "entry": []}', "wrong_object"),
        (b'{"object": "instagram", "entry": [{"id": "1", "changes": []}]}', "wrong_object"),
        (b'{"object": "whatsapp_business_account"}', "bad_shape"),
        (b'{"object": "whatsapp_business_account", "entry": {}}', "bad_shape"),
        (b'{"object": "whatsapp_business_account", "entry": [{"id": "1"}]}', "bad_shape"),
        (
            b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {}}]}]}',
            "bad_shape",
        ),
        (
            b'{"object": "whatsapp_business_account", "entry": [{"changes": '
            b'[{"field": "messages", "value": "6281234500001 halo"}]}]}',
            "bad_shape",
        ),
    ],
)
def test_malformed_body_raises_payload_error_with_its_code(body: bytes, code: str):
    with pytest.raises(PayloadError) as caught:
        parse(body)
    assert caught.value.code == code
    assert caught.value.http_status == 400


def test_payload_error_message_never_quotes_the_body():
    body = (
        b'{"object": "whatsapp_business_account", "entry": [{"changes": '
        b'[{"field": "messages", "value": "6281234500001 rahasia"}]}]}'
    )
    with pytest.raises(PayloadError) as caught:
        parse(body)
    assert "6281234500001" not in str(caught.value)
    assert "rahasia" not in str(caught.value)
    assert caught.value.message == "invalid entry.0.changes.0.value"


def test_an_empty_entry_list_is_a_valid_empty_batch():
    assert normalize(parse(b'{"object":"whatsapp_business_account","entry":[]}'), tenant_of) == (
        Batch()
    )


# -- warnings are safe to log ------------------------------------------------

SECRET_TEXT = "Rahasia klien: sengketa warisan"
SECRET_PHONE = "6289876543210"


def _warning_rich_document() -> dict[str, Any]:
    """One change that triggers every per-item warning, full of text and numbers."""

    def message(n: int, **extra: Any) -> dict[str, Any]:
        return {"from": SECRET_PHONE, "id": f"wamid.w{n}", "timestamp": str(T0), **extra}

    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "628111000001", "phone_number_id": FIRM_A_PNID},
        "contacts": [
            {"profile": {"name": SECRET_TEXT}, "wa_id": SECRET_PHONE},
            {"profile": SECRET_TEXT, "wa_id": SECRET_PHONE},
        ],
        "messages": [
            message(1, type=SECRET_TEXT, **{SECRET_TEXT: {"body": SECRET_TEXT}}),
            message(2, type=SECRET_PHONE),
            message(3, type="text", text=SECRET_TEXT),
            message(4, type="image", image={"caption": SECRET_TEXT}),
            message(5, type="interactive", interactive={"type": SECRET_PHONE}),
            {"from": SECRET_PHONE, "id": "wamid.w6", "type": "text", "text": {"body": SECRET_TEXT}},
            {"id": "wamid.w7", "type": "text", "text": {"body": SECRET_TEXT}},
            message(8, type="location", location=SECRET_TEXT),
        ],
        "statuses": [
            {"id": "wamid.s1", "status": SECRET_TEXT, "recipient_id": SECRET_PHONE},
            {"id": "wamid.s2", "status": "failed", "errors": SECRET_TEXT},
            {"id": "wamid.s3", "status": SECRET_PHONE, "timestamp": SECRET_PHONE},
        ],
        "errors": [{"code": 131000, "title": SECRET_TEXT}, SECRET_TEXT],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_A,
                "changes": [
                    {"field": "messages", "value": value},
                    {"field": SECRET_PHONE, "value": {"text": SECRET_TEXT}},
                    {
                        "field": "user_preferences",
                        "value": {
                            "metadata": {"phone_number_id": FIRM_A_PNID},
                            "user_preferences": [
                                {"wa_id": SECRET_PHONE, "value": SECRET_TEXT},
                                {"value": "stop", "category": SECRET_TEXT},
                            ],
                        },
                    },
                ],
            }
        ],
    }


def test_warnings_never_contain_message_text_or_phone_numbers():
    batch = run(_warning_rich_document())
    assert len(batch.warnings) >= 12, batch.warnings
    for warning in batch.warnings:
        assert SECRET_PHONE not in warning
        assert "Rahasia" not in warning and "warisan" not in warning
        assert not re.search(r"\d{5,}", warning), warning


def _sensitive_strings(node: Any, key: str = "") -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            found |= _sensitive_strings(v, k)
    elif isinstance(node, list):
        for v in node:
            found |= _sensitive_strings(v, key)
    elif (
        isinstance(node, str)
        and key not in {"type", "field", "object", "status", "id", "messaging_product", "category"}
        and len(node) > 3
    ):
        found.add(node)
    return found


@pytest.mark.parametrize("name", names())
def test_fixture_warnings_never_quote_the_payload(name: str):
    secrets = _sensitive_strings(load(name))
    for warning in run_fixture(name).warnings:
        assert not any(secret in warning for secret in secrets), warning
        assert not re.search(r"\d{5,}", warning), warning


# -- properties --------------------------------------------------------------

# JSON has no NaN or Infinity: a body carrying them is not JSON (parse answers not_json).
json_floats = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = st.none() | st.booleans() | st.integers() | json_floats | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIXTURES = {name: load(name) for name in names()}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            paths += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            paths += _paths(v, (*prefix, i))
    return paths


def _mutate(doc: Any, path: tuple[Any, ...], action: str, replacement: Any) -> Any:
    if not path:
        return replacement if action == "replace" else doc
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_normalize_never_raises_on_fixtures_with_fields_removed_or_replaced(data: st.DataObject):
    doc = copy.deepcopy(FIXTURES[data.draw(st.sampled_from(names()), label="fixture")])
    for _ in range(data.draw(st.integers(1, 6), label="mutations")):
        paths = _paths(doc)
        path = data.draw(st.sampled_from(paths), label="path")
        action = data.draw(st.sampled_from(["delete", "replace"]), label="action")
        replacement = data.draw(json_values | st.sampled_from(["", None, [], {}]), label="with")
        doc = _mutate(doc, path, action, replacement)
    pnid_owner = data.draw(st.sampled_from([tenant_of, lambda _pnid: "firm-x"]), label="tenant_of")

    try:
        envelope = parse(dumps(doc))
    except PayloadError:
        return
    batch = normalize(envelope, pnid_owner)

    assert isinstance(batch, Batch)
    for warning in batch.warnings:
        assert not re.search(r"\d{5,}", warning), warning


@settings(max_examples=300, deadline=None)
@given(
    message=st.fixed_dictionaries(
        {"id": st.text(min_size=1)},
        optional={
            "from": st.text() | st.integers(),
            "from_user_id": st.text(),
            "timestamp": st.text() | st.integers() | json_floats,
            "type": st.sampled_from([t.value for t in MessageType]) | st.text(),
            "text": st.fixed_dictionaries({}, optional={"body": st.text()}),
            "context": st.fixed_dictionaries(
                {}, optional={"id": st.text(), "forwarded": st.booleans(), "from": st.text()}
            ),
            "reaction": st.fixed_dictionaries(
                {}, optional={"message_id": st.text(), "emoji": st.text()}
            ),
            "image": st.fixed_dictionaries(
                {}, optional={"id": st.text(), "caption": st.text(), "sha256": st.text()}
            ),
            "audio": st.fixed_dictionaries({}, optional={"id": st.text(), "voice": json_scalars}),
            "location": st.fixed_dictionaries(
                {}, optional={"latitude": json_scalars, "name": st.text()}
            ),
            "interactive": st.fixed_dictionaries(
                {}, optional={"type": st.text(), "button_reply": json_values}
            ),
            "system": st.fixed_dictionaries({}, optional={"type": st.text(), "wa_id": st.text()}),
            "errors": st.lists(st.fixed_dictionaries({}, optional={"code": json_scalars})),
        },
    ),
    contacts=st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "wa_id": st.text(),
                "user_id": st.text(),
                "profile": st.fixed_dictionaries({}, optional={"name": st.text()}),
            },
        ),
        max_size=3,
    ),
)
def test_normalize_never_raises_on_messages_with_random_optional_fields(
    message: dict[str, Any], contacts: list[dict[str, Any]]
):
    doc = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_A,
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "metadata": {"phone_number_id": FIRM_A_PNID},
                            "contacts": contacts,
                            "messages": [message],
                        },
                    }
                ],
            }
        ],
    }
    batch = run(doc)
    assert len(batch.events) + len(batch.quarantined) == 1


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_parse_raises_nothing_but_payload_error(body: bytes):
    try:
        envelope = parse(body)
    except PayloadError as exc:
        assert exc.code in ("not_json", "too_deep", "wrong_object", "bad_shape")
    else:
        normalize(envelope, tenant_of)


def test_parse_document_accepts_an_already_decoded_body():
    envelope = parse_document(load("text"))
    assert envelope.entry[0].changes[0].field == "messages"


# -- timestamps that cannot be stored or meant ---------------------------------

UNSTORABLE_OR_MEANINGLESS = [
    "1e308",                   # a float string: an int of 309 digits
    1e308,                     # the same as a JSON number
    "1" + "0" * 400,           # 10**400 as a string (a JSON number this big is not_json)
    "1e400",                   # past every float
    2**63,                     # one past SQLite's INTEGER
    str(2**64 + 1),
    -1,
    "-1767261600",
    0,                         # present, so meant, and 1970 is no WhatsApp time
    "0",
    TIMESTAMP_MIN - 1,         # 2008
    TIMESTAMP_MAX,             # 2100
    T0 * 1000,                 # milliseconds where Meta sends seconds
    "abc",
    "",
    True,
    [],
    {"seconds": T0},
]
PLAUSIBLE = [
    (str(T0), T0),
    (T0, T0),
    (T0 + 0.9, T0),
    (f"{T0}.0", T0),
    (f" {T0} ", T0),
    (TIMESTAMP_MIN, TIMESTAMP_MIN),
    (TIMESTAMP_MAX - 1, TIMESTAMP_MAX - 1),
]


def _two_updates(kind: str, bad: object) -> dict[str, Any]:
    """A document with two updates of ``kind`` in one change; the first has timestamp ``bad``."""
    if kind == "messages":
        doc = load("two_customers_one_change")
    elif kind == "statuses":
        doc = load("status_sent")
        statuses = doc["entry"][0]["changes"][0]["value"]["statuses"]
        statuses.append({**copy.deepcopy(statuses[0]), "id": "wamid.second", "status": "read"})
    else:
        doc = load("user_preferences_stop")
        preferences = doc["entry"][0]["changes"][0]["value"]["user_preferences"]
        preferences.append({**copy.deepcopy(preferences[0]), "value": "resume"})
    items = doc["entry"][0]["changes"][0]["value"][kind]
    assert len(items) == 2
    items[0]["timestamp"] = bad
    return doc


@pytest.mark.parametrize("kind", ["messages", "statuses", "user_preferences"])
@pytest.mark.parametrize("bad", UNSTORABLE_OR_MEANINGLESS, ids=repr)
def test_an_update_with_an_impossible_timestamp_is_quarantined_alone(kind: str, bad: object):
    doc = _two_updates(kind, bad)
    first, second = doc["entry"][0]["changes"][0]["value"][kind]
    batch = run(doc)
    (event,) = batch.events
    assert event.timestamp == int(second["timestamp"])
    (q,) = batch.quarantined
    assert q.reason is QuarantineReason.BAD_TIMESTAMP
    assert q.change["value"][kind] == [first]
    assert q.change["value"]["metadata"]["phone_number_id"] == FIRM_A_PNID
    assert batch.warnings == (
        f"entry[0].changes[0].{kind}[0]: timestamp is not a time between 2009 and 2100;"
        " quarantined",
    )


def test_a_flat_preference_with_an_impossible_timestamp_is_quarantined():
    doc = load("user_preferences_stop")
    value = doc["entry"][0]["changes"][0]["value"]
    (pref,) = value.pop("user_preferences")
    value.update(pref, timestamp="1e308")
    batch = run(doc)
    assert batch.events == ()
    assert [q.reason for q in batch.quarantined] == [QuarantineReason.BAD_TIMESTAMP]


@pytest.mark.parametrize("kind", ["messages", "statuses", "user_preferences"])
@pytest.mark.parametrize(("sent", "read"), PLAUSIBLE, ids=repr)
def test_a_plausible_timestamp_is_read_as_whole_seconds(kind: str, sent: object, read: int):
    batch = run(_two_updates(kind, sent))
    assert batch.quarantined == () and batch.warnings == ()
    assert batch.events[0].timestamp == read


@pytest.mark.parametrize("code", [str(2**63), "1e308", "1" + "0" * 400, str(-(2**63) - 1)])
def test_an_error_code_no_store_can_hold_becomes_the_unknown_code(code: str):
    doc = load("status_failed")
    doc["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"] = code
    (event,) = run(doc).events
    assert isinstance(event, StatusUpdate)
    assert event.errors[0].code == UNKNOWN_ERROR_CODE


def test_a_conversation_expiry_no_store_can_hold_is_dropped():
    doc = load("status_sent")
    conversation = doc["entry"][0]["changes"][0]["value"]["statuses"][0]["conversation"]
    conversation["expiration_timestamp"] = "1" + "0" * 30
    (event,) = run(doc).events
    assert isinstance(event, StatusUpdate)
    assert event.conversation is not None and event.conversation.expiration is None


def _storable(node: Any) -> bool:
    """Whether SQLite and orjson can hold every number in ``node``."""
    if isinstance(node, bool) or node is None or isinstance(node, str | float):
        return True
    if isinstance(node, int):
        return -(2**63) <= node < 2**63
    if isinstance(node, Mapping):
        return all(_storable(k) and _storable(v) for k, v in node.items())
    if isinstance(node, tuple | list):
        return all(map(_storable, node))
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return _storable(dataclasses.asdict(node))
    return True


any_timestamp = (
    st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.integers(TIMESTAMP_MIN - 10, TIMESTAMP_MAX + 10)
    | json_floats
    | st.from_regex(r"\A\s?-?[0-9]{1,500}(\.[0-9]{0,3})?([eE][+-]?[0-9]{1,4})?\s?\Z")
    | st.sampled_from(["inf", "-inf", "nan", "Infinity", "1_700_000_000", "0x10", "٣"])
    | json_values
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=any_timestamp, status=any_timestamp, preference=any_timestamp)
def test_normalize_raises_nothing_and_stores_nothing_impossible_for_any_timestamp(
    message: Any, status: Any, preference: Any
):
    docs = [_two_updates("messages", message), _two_updates("statuses", status),
            _two_updates("user_preferences", preference)]
    for doc in docs:
        try:
            envelope = parse(dumps(doc))
        except PayloadError as error:  # a JSON number past every float: not JSON to orjson
            assert error.code == "not_json"
            continue
        batch = normalize(envelope, tenant_of)
        assert len(batch.events) + len(batch.quarantined) == 2
        for event in batch.events:
            assert event.timestamp == 0 or TIMESTAMP_MIN <= event.timestamp < TIMESTAMP_MAX
            assert _storable(event)
            orjson.dumps(dataclasses.asdict(event))
        for item in batch.quarantined:
            assert item.reason is QuarantineReason.BAD_TIMESTAMP
            orjson.dumps(item.change)
        for warning in batch.warnings:
            assert not re.search(r"\d{5,}", warning), warning


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 100_000])
def test_a_body_nested_past_the_limit_is_too_deep(depth: int):
    inner = depth - 1
    body = b'{"object":"whatsapp_business_account","entry":' + b"[" * inner + b"]" * inner + b"}"
    with pytest.raises(PayloadError) as caught:
        parse(body)
    assert caught.value.code == "too_deep"
    assert caught.value.http_status == 400
