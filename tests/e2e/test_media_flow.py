"""Media end to end: Meta's stand-in → webhook → media pool (real clamd) →
sealed storage → feed → GET /api/v1/media/{ref}."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import structlog

from lawhub_actors.settings import Secrets
from lawhub_actors.simulator import traffic
from lawhub_actors.simulator.graph import GraphStandIn, serve
from lawhub_actors.web.app import build_app
from tests.conftest import ADMIN_TOKEN, REPO, test_environment
from tests.e2e.gateway import Feed, auth, post
from tests.servers import CLAMD_CUSTOM_MARKER, CLAMD_CUSTOM_SIGNATURE, EICAR

NUMBER_A = "106540352242922"
TOKEN = "graph-access-token-for-tests"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + os.urandom(200_000)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + os.urandom(50_000)
OGG = b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead\x01\x01" + os.urandom(30_000)
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + os.urandom(5_000)


def config(clamd: str | None, extra: str = "", clamd_timeout_s: float = 5.0) -> str:
    limits = f'clamd_socket = "{clamd}"\nclamd_timeout_s = {clamd_timeout_s}\n' if clamd else ""
    return (REPO / "config" / "lawhub.toml").read_text() + (
        f"\n[limits]\n{limits}\n[retry]\nmax_attempts = 3\nbase_s = 0.05\nmax_s = 0.2\n{extra}"
    )


@pytest.fixture
async def meta():
    stand_in = GraphStandIn(TOKEN)
    async with serve(stand_in) as base_url:
        stand_in.base_url = base_url  # type: ignore[attr-defined]
        yield stand_in


@pytest.fixture
def start(aiohttp_client, make_settings, tmp_path: Path, meta):
    async def start_gateway(clamd: str | None, clamd_timeout_s: float = 5.0) -> Any:
        secrets = Secrets.from_env(test_environment(
            tmp_path, LAWHUB_ACCESS_TOKEN=TOKEN, LAWHUB_GRAPH_BASE_URL=meta.base_url,
        ))
        settings = make_settings(config(clamd, clamd_timeout_s=clamd_timeout_s))
        app = build_app(settings, secrets, on_give_up=lambda r: None)
        return await aiohttp_client(app)

    return start_gateway


def announce(meta: GraphStandIn, kind: str, data: bytes, mime: str, **fields: Any) -> dict:
    """Put ``data`` on Meta's side; the media object a webhook carries for it."""
    media_id = meta.add_media(data, mime)
    digest = hashlib.sha256(data).digest()
    return {"id": media_id, "mime_type": mime,
            "sha256": base64.b64encode(digest).decode(), **fields}  # webhooks: base64


async def send_media(client, customer: str, kind: str, media: dict) -> str:
    wamid = traffic.wamid()
    change = traffic.media_message(NUMBER_A, customer, kind, media, message_id=wamid)
    assert await post(client, traffic.envelope(change)) == 200
    return wamid


async def scanned(feed: Feed, wamid: str, timeout: float = 20.0) -> dict:
    frames = await feed.until(
        lambda f: any(x["type"] == "media.scanned" and x["data"]["wamid"] == wamid for x in f),
        timeout,
    )
    return next(x["data"] for x in frames
                if x["type"] == "media.scanned" and x["data"]["wamid"] == wamid)


@pytest.mark.parametrize(("kind", "data", "mime", "extra"), [
    ("image", JPEG, "image/jpeg", {"caption": "foto surat panggilan"}),
    ("document", PDF, "application/pdf", {"filename": "putusan.pdf"}),
    ("audio", OGG, "audio/ogg; codecs=opus", {"voice": True}),
])
async def test_a_clean_file_is_stored_sealed_and_served_back_identical_to_its_tenant_only(
    start, meta, clamd_server, tmp_path, kind, data, mime, extra
) -> None:
    client = await start(clamd_server)
    feed = await Feed.open(client, "firm-a")
    wamid = await send_media(client, "6281234500101", kind, announce(meta, kind, data, mime, **extra))
    result = await scanned(feed, wamid)
    assert (result["verdict"], result["scanner"], result["size"]) == ("clean", "clamd", len(data))
    ref = result["ref"]

    stored = list((tmp_path / "media" / "clean" / "firm-a").iterdir())
    assert [p.name for p in stored] == [ref]
    assert data[:64] not in stored[0].read_bytes() and data[-64:] not in stored[0].read_bytes()

    response = await client.get(f"/api/v1/media/{ref}", headers=auth("firm-a"))
    assert response.status == 200
    assert response.content_type == mime.split(";")[0]
    assert await response.read() == data
    assert (await client.get(f"/api/v1/media/{ref}", headers=auth("firm-b"))).status == 404
    assert (await client.get(f"/api/v1/media/{ref}")).status == 401
    page = await (await client.get("/api/v1/conversations/6281234500101/messages",
                                   headers=auth("firm-a"))).json()
    assert page["messages"][0]["media"]["checked"]["ref"] == ref
    await feed.close()


@pytest.mark.parametrize(("data", "mime", "kind", "verdict", "reason"), [
    (PDF[:40] + EICAR + PDF[40:], "application/pdf", "document", "infected", "Eicar-Test-Signature"),
    (PDF + CLAMD_CUSTOM_MARKER, "application/pdf", "document", "infected", CLAMD_CUSTOM_SIGNATURE),
    (ELF, "image/jpeg", "image", "refused", "executable"),
])
async def test_malware_and_disguised_executables_are_quarantined_and_never_served(
    start, meta, clamd_server, tmp_path, data, mime, kind, verdict, reason
) -> None:
    client = await start(clamd_server)
    feed = await Feed.open(client, "firm-a")
    wamid = await send_media(client, "6281234500102", kind, announce(meta, kind, data, mime))
    result = await scanned(feed, wamid)
    assert (result["verdict"], result["reason"], result["ref"]) == (verdict, reason, None)
    assert not (tmp_path / "media" / "clean" / "firm-a").exists()
    [kept] = (tmp_path / "media" / "quarantine" / "firm-a").iterdir()
    assert (await client.get(f"/api/v1/media/{kept.name}", headers=auth("firm-a"))).status == 404
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    listed = (await (await client.get("/admin/quarantine", headers=admin)).json())["media"]
    assert [(m["verdict"], m["reason"], m["ref"]) for m in listed] == [(verdict, reason, kept.name)]
    await feed.close()


async def test_a_checksum_that_does_not_match_is_refused(start, meta, clamd_server) -> None:
    client = await start(clamd_server)
    feed = await Feed.open(client, "firm-a")
    media = announce(meta, "image", JPEG, "image/jpeg")
    media["sha256"] = hashlib.sha256(b"something else").hexdigest()
    wamid = await send_media(client, "6281234500103", "image", media)
    result = await scanned(feed, wamid)
    assert (result["verdict"], result["reason"]) == ("refused", "checksum_mismatch")
    await feed.close()


async def test_a_file_over_its_limit_is_cut_off_at_the_cap(start, meta, clamd_server) -> None:
    client = await start(clamd_server)
    feed = await Feed.open(client, "firm-a")
    big = b"\xff\xd8\xff\xe0" + os.urandom(40 * 1024 * 1024)  # images may be 5 MB
    media_id = meta.add_media(big, "image/jpeg", file_size=40_000, chunked=True)  # Meta's size lies
    wamid = await send_media(client, "6281234500104", "image", {
        "id": media_id, "mime_type": "image/jpeg", "sha256": hashlib.sha256(big).hexdigest()})
    result = await scanned(feed, wamid)
    assert (result["verdict"], result["reason"]) == ("refused", "too_large")
    limit = 5 * 1024 * 1024
    assert limit < result["size"] <= limit + 256 * 1024  # what the gateway read: the cap, a chunk
    [sent] = meta.stats(media_id).bytes_sent  # what the server wrote, socket buffers included
    assert sent < 20 * 1024 * 1024, f"{sent} bytes of a 40 MB file were sent"
    await feed.close()


async def test_with_clamd_down_a_file_is_retried_then_marked_and_other_conversations_flow(
    start, meta, clamd_down, tmp_path
) -> None:
    client = await start(clamd_down)
    feed = await Feed.open(client, "firm-a")
    media = announce(meta, "document", PDF, "application/pdf")
    wamid = await send_media(client, "6281234500105", "document", media)
    other = traffic.text_message(NUMBER_A, "6281234500106", "pesan lain")
    assert await post(client, traffic.envelope(other)) == 200
    result = await scanned(feed, wamid)
    assert (result["verdict"], result["reason"]) == ("unavailable", "scanner_unavailable")
    assert len(meta.stats(media["id"]).downloads) == 3  # [retry] max_attempts
    texts = [f["data"]["text"] for f in feed.of_type("message.received")]
    assert "pesan lain" in texts
    [kept] = (tmp_path / "media" / "quarantine" / "firm-a").iterdir()  # not lost: kept unscanned
    assert kept.stat().st_size > len(PDF)
    await feed.close()


async def test_a_slow_download_parks_only_its_own_conversation(start, meta, clamd_server) -> None:
    client = await start(clamd_server)
    feed = await Feed.open(client, "firm-a")
    media = announce(meta, "image", JPEG, "image/jpeg")
    meta.slow_download(100_000, media["id"])  # ~2 s for this photo
    photo = await send_media(client, "6281234500107", "image", media)
    after = traffic.text_message(NUMBER_A, "6281234500107", "ini suratnya, Pak")
    assert await post(client, traffic.envelope(after)) == 200
    loop = asyncio.get_running_loop()
    posted = loop.time()
    neighbour = traffic.text_message(NUMBER_A, "6281234500108", "tetangga tidak menunggu")
    assert await post(client, traffic.envelope(neighbour)) == 200
    await feed.until(lambda f: any(x["data"].get("text") == "tetangga tidak menunggu" for x in f))
    neighbour_s = loop.time() - posted
    assert not any(x["type"] == "media.scanned" for x in feed.frames), "the photo was not slow"
    await scanned(feed, photo)
    await feed.until(lambda f: any(x["data"].get("text") == "ini suratnya, Pak" for x in f))
    slow_s = loop.time() - posted
    await feed.until(lambda f: len([x for x in f if x["type"] == "intake.updated"]) == 2)
    assert neighbour_s < 1.0 < slow_s, (neighbour_s, slow_s)
    own = [(x["type"], x["data"].get("text")) for x in feed.frames
           if x["data"].get("customer") == "6281234500107" and x["type"] != "intake.urgent"]
    assert own == [("message.received", None), ("media.scanned", None),
                   ("message.received", "ini suratnya, Pak"), ("intake.updated", None)]
    await feed.close()


async def test_meta_failures_are_retried_and_after_the_last_try_the_media_is_unavailable(
    start, meta, clamd_server
) -> None:
    client = await start(clamd_server)
    feed = await Feed.open(client, "firm-a")
    meta.fail_next(2, status=500)  # two 5xx, then Meta answers
    recovered = await send_media(client, "6281234500109", "image",
                                 announce(meta, "image", JPEG, "image/jpeg"))
    assert (await scanned(feed, recovered))["verdict"] == "clean"

    meta.fail_next(3, status=429)  # every try of [retry] max_attempts = 3
    lost = await send_media(client, "6281234500110", "image",
                            announce(meta, "image", JPEG, "image/jpeg"))
    after = traffic.text_message(NUMBER_A, "6281234500110", "sudah terkirim?")
    assert await post(client, traffic.envelope(after)) == 200
    result = await scanned(feed, lost)
    assert (result["verdict"], result["reason"]) == ("unavailable", "meta_unavailable")
    await feed.until(lambda f: any(x["data"].get("text") == "sudah terkirim?" for x in f))
    await feed.close()


async def test_a_clamd_that_stops_answering_times_out_and_the_file_is_kept_unscanned(
    start, meta, clamd_process, tmp_path
) -> None:
    client = await start(clamd_process.address, clamd_timeout_s=0.3)
    feed = await Feed.open(client, "firm-a")
    clamd_process.proc.send_signal(signal.SIGSTOP)  # hung: accepts, never answers
    try:
        wamid = await send_media(client, "6281234500111", "document",
                                 announce(meta, "document", PDF, "application/pdf"))
        result = await scanned(feed, wamid)
    finally:
        clamd_process.proc.send_signal(signal.SIGCONT)
    assert (result["verdict"], result["reason"], result["ref"]) == (
        "unavailable", "scanner_unavailable", None)
    assert len(list((tmp_path / "media" / "quarantine" / "firm-a").iterdir())) == 1
    await feed.close()


async def test_without_clamd_the_built_in_checks_still_run_and_operators_see_scanning_is_off(
    start, meta
) -> None:
    with structlog.testing.capture_logs() as logged:
        client = await start(None)
    assert [e["reason"] for e in logged if e["event"] == "malware_scanning_off"]
    feed = await Feed.open(client, "firm-a")
    clean = await send_media(client, "6281234500112", "image",
                             announce(meta, "image", JPEG, "image/jpeg"))
    eicar = await send_media(client, "6281234500113", "document",
                             announce(meta, "document", PDF + EICAR, "application/pdf"))
    assert (await scanned(feed, clean))["scanner"] == "builtin"
    result = await scanned(feed, eicar)
    assert (result["verdict"], result["reason"]) == ("infected", "Eicar-Test-Signature")
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    tree = await (await client.get("/admin/tree", headers=admin)).json()
    assert tree["services"]["malware_scanning"] == "off"
    assert any(child["path"] == "inbound/media" for child in tree["children"][0]["children"])
    await feed.close()
