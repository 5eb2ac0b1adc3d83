"""The Graph API stand-in: Meta's response and error shapes, URL expiry, failure modes, counters."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time

import aiohttp
import pytest
from yarl import URL

from lawhub_actors.simulator.graph import (
    ATTACHMENTS_PATH,
    GRAPH_VERSION,
    serve,
    serve_in_thread,
)
from tests.simulator.conftest import AUTH, TOKEN

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 1000


def media_path(media_id: str) -> str:
    return f"/{GRAPH_VERSION}/{media_id}"


def local(url: str) -> str:
    """The path and query of a URL the stand-in handed out (the test client adds the origin)."""
    return str(URL(url).relative())


async def resolve(client, media_id: str) -> dict:
    response = await client.get(media_path(media_id), headers=AUTH)
    assert response.status == 200, await response.text()
    return await response.json()


def assert_meta_error(body: dict, code: int, error_type: str) -> dict:
    error = body["error"]
    assert error["code"] == code
    assert error["type"] == error_type
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fbtrace_id"], str) and error["fbtrace_id"]
    return error


# -- response shapes ---------------------------------------------------------------------------


async def test_resolve_answers_metas_media_shape_with_an_absolute_url_on_this_server(
    client, stand_in
) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    body = await resolve(client, media_id)
    assert set(body) == {"messaging_product", "url", "mime_type", "sha256", "file_size", "id"}
    assert body["messaging_product"] == "whatsapp"
    assert body["id"] == media_id
    assert body["mime_type"] == "application/pdf"
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", body["sha256"])
    assert body["file_size"] == len(PDF) and isinstance(body["file_size"], int)
    url = URL(body["url"])
    assert url.is_absolute()
    assert url.origin() == client.make_url("/").origin()
    assert url.path == ATTACHMENTS_PATH
    assert url.query["mid"] == media_id
    assert url.query["ext"].isdigit() and url.query["hash"]


async def test_generated_media_ids_are_numeric_like_metas(stand_in) -> None:
    ids = {stand_in.add_media(b"x", "image/jpeg") for _ in range(20)}
    assert len(ids) == 20
    assert all(re.fullmatch(r"\d{16}", media_id) for media_id in ids)


async def test_the_download_url_streams_the_bytes_with_type_and_length(client, stand_in) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    body = await resolve(client, media_id)
    response = await client.get(local(body["url"]), headers=AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Length"] == str(len(PDF))
    assert await response.read() == PDF


async def test_lying_metadata_is_reported_but_the_real_bytes_are_served(client, stand_in) -> None:
    media_id = stand_in.add_media(PDF, "image/jpeg", sha256="ab" * 32, file_size=10)
    body = await resolve(client, media_id)
    assert body["sha256"] == "ab" * 32
    assert body["file_size"] == 10
    response = await client.get(local(body["url"]), headers=AUTH)
    assert response.headers["Content-Length"] == str(len(PDF))
    assert await response.read() == PDF


async def test_chunked_media_is_served_without_content_length(client, stand_in) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf", chunked=True)
    body = await resolve(client, media_id)
    response = await client.get(local(body["url"]), headers=AUTH)
    assert "Content-Length" not in response.headers
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert await response.read() == PDF


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"},
     {"Authorization": TOKEN}],
    ids=["missing", "wrong", "other-scheme", "no-scheme"],
)
async def test_a_missing_or_wrong_token_gets_metas_oauth_error_190(
    client, stand_in, headers
) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    response = await client.get(media_path(media_id), headers=headers)
    assert response.status == 401
    error = assert_meta_error(await response.json(), 190, "OAuthException")
    assert error["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert stand_in.stats(media_id).resolves == 0


async def test_the_download_url_needs_the_token_too(client, stand_in) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    body = await resolve(client, media_id)
    response = await client.get(local(body["url"]))
    assert response.status == 401
    assert_meta_error(await response.json(), 190, "OAuthException")
    assert stand_in.stats(media_id).downloads == ()


async def test_an_unknown_media_id_gets_metas_unsupported_get_request(client) -> None:
    response = await client.get(media_path("1234567890123456"), headers=AUTH)
    assert response.status == 400
    error = assert_meta_error(await response.json(), 100, "GraphMethodException")
    assert error["error_subcode"] == 33
    assert error["message"].startswith(
        "Unsupported get request. Object with ID '1234567890123456' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation"
    )


async def test_a_removed_media_is_unknown_and_its_urls_are_dead(client, stand_in) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    body = await resolve(client, media_id)
    stand_in.remove_media(media_id)
    assert (await client.get(media_path(media_id), headers=AUTH)).status == 400
    assert (await client.get(local(body["url"]), headers=AUTH)).status == 404


async def test_adding_a_media_id_twice_is_refused(stand_in) -> None:
    stand_in.add_media(PDF, "application/pdf", media_id="42")
    with pytest.raises(ValueError, match="already exists"):
        stand_in.add_media(PDF, "application/pdf", media_id="42")


# -- URL expiry --------------------------------------------------------------------------------


async def test_a_url_expires_url_ttl_after_it_was_handed_out(client, stand_in, clock) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    body = await resolve(client, media_id)
    assert int(URL(body["url"]).query["ext"]) == int(clock.now + 300)
    clock.now += 299
    assert (await client.get(local(body["url"]), headers=AUTH)).status == 200
    clock.now += 1
    assert (await client.get(local(body["url"]), headers=AUTH)).status == 404
    fresh = await resolve(client, media_id)
    assert fresh["url"] != body["url"]
    assert (await client.get(local(fresh["url"]), headers=AUTH)).status == 200


async def test_url_ttl_is_settable(client, stand_in, clock) -> None:
    stand_in.url_ttl_s = 10
    media_id = stand_in.add_media(PDF, "application/pdf")
    body = await resolve(client, media_id)
    clock.now += 10
    assert (await client.get(local(body["url"]), headers=AUTH)).status == 404


async def test_expire_urls_kills_every_url_handed_out_so_far(client, stand_in) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    old = [await resolve(client, media_id) for _ in range(2)]
    stand_in.expire_urls()
    for body in old:
        assert (await client.get(local(body["url"]), headers=AUTH)).status == 404
    fresh = await resolve(client, media_id)
    assert (await client.get(local(fresh["url"]), headers=AUTH)).status == 200


@pytest.mark.parametrize("field", ["hash", "ext", "mid"])
async def test_a_tampered_url_is_not_found(client, stand_in, field) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    other = stand_in.add_media(b"other", "image/png")
    url = URL((await resolve(client, media_id))["url"])
    forged = {"hash": "forged", "ext": "9999999999", "mid": other}[field]
    response = await client.get(url.update_query({field: forged}).relative(), headers=AUTH)
    assert response.status == 404


# -- failure modes -----------------------------------------------------------------------------


async def test_fail_next_answers_500_with_metas_131000_then_recovers(client, stand_in) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    stand_in.fail_next(2)
    for _ in range(2):
        response = await client.get(media_path(media_id), headers=AUTH)
        assert response.status == 500
        error = assert_meta_error(await response.json(), 131000, "OAuthException")
        assert "Something went wrong" in error["message"]
        assert error["error_data"]["details"]
    await resolve(client, media_id)
    assert stand_in.stats(media_id).resolves == 3


async def test_fail_next_with_429_answers_metas_rate_limit_130429(client, stand_in) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    stand_in.fail_next(1, status=429)
    response = await client.get(media_path(media_id), headers=AUTH)
    assert response.status == 429
    error = assert_meta_error(await response.json(), 130429, "OAuthException")
    assert error["message"] == "(#130429) Rate limit hit"
    assert error["error_data"] == {
        "messaging_product": "whatsapp",
        "details": "Cloud API message throughput has been reached.",
    }


async def test_fail_next_takes_an_explicit_code(client, stand_in) -> None:
    stand_in.fail_next(1, status=400, code=131052)
    response = await client.get(media_path("1"), headers=AUTH)
    assert response.status == 400
    assert_meta_error(await response.json(), 131052, "OAuthException")


async def test_fail_downloads_next_fails_that_many_downloads_then_recovers(
    client, stand_in
) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    body = await resolve(client, media_id)
    stand_in.fail_downloads_next(2, 503)
    statuses = [(await client.get(local(body["url"]), headers=AUTH)).status for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert [d.status for d in stand_in.stats(media_id).downloads] == [503, 503, 200]


async def test_resolve_delay_slows_resolves_only(client, stand_in) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    body = await resolve(client, media_id)
    stand_in.resolve_delay_s = 0.3
    started = time.monotonic()
    await resolve(client, media_id)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert (await client.get(local(body["url"]), headers=AUTH)).status == 200
    assert time.monotonic() - started < 0.3


async def test_a_slow_download_takes_long_while_the_server_stays_responsive(
    client, stand_in
) -> None:
    media_id = stand_in.add_media(b"x" * 40_000, "audio/ogg")
    stand_in.slow_download(100_000, media_id)  # 0.4 s for the whole file
    body = await resolve(client, media_id)

    async def download() -> bytes:
        response = await client.get(local(body["url"]), headers=AUTH)
        return await response.read()

    started = time.monotonic()
    slow = asyncio.create_task(download())
    await asyncio.sleep(0.05)
    answered = time.monotonic()
    await resolve(client, media_id)  # answered while the download still streams
    assert time.monotonic() - answered < 0.2
    assert not slow.done()
    assert await slow == b"x" * 40_000
    assert time.monotonic() - started >= 0.35


async def test_slow_download_for_all_media_can_be_lifted(client, stand_in) -> None:
    media_id = stand_in.add_media(b"x" * 40_000, "audio/ogg")
    stand_in.slow_download(10_000)
    stand_in.slow_download(None)
    body = await resolve(client, media_id)
    started = time.monotonic()
    assert len(await (await client.get(local(body["url"]), headers=AUTH)).read()) == 40_000
    assert time.monotonic() - started < 1


async def test_a_stalled_download_sends_headers_and_some_bytes_then_nothing(
    client, stand_in
) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    stand_in.stall_download(media_id, after_bytes=1000)
    body = await resolve(client, media_id)
    response = await client.get(local(body["url"]), headers=AUTH)
    assert response.status == 200
    assert len(await response.content.readexactly(1000)) == 1000
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(response.content.read(1), 0.3)
    await resolve(client, media_id)  # the server still answers
    (record,) = stand_in.stats(media_id).downloads
    assert (record.status, record.bytes_sent, record.completed) == (200, 1000, False)
    response.close()
    stand_in.unstall_download(media_id)
    fresh = await resolve(client, media_id)
    assert await (await client.get(local(fresh["url"]), headers=AUTH)).read() == PDF


# -- counters ----------------------------------------------------------------------------------


async def test_counters_record_resolves_and_each_download_with_its_bytes(
    client, stand_in
) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    other = stand_in.add_media(b"tiny", "image/png")
    for _ in range(2):
        body = await resolve(client, media_id)
        assert await (await client.get(local(body["url"]), headers=AUTH)).read() == PDF
    stats = stand_in.stats(media_id)
    assert stats.resolves == 2
    assert [(d.status, d.completed) for d in stats.downloads] == [(200, True), (200, True)]
    assert stats.bytes_sent == (len(PDF), len(PDF))
    assert stand_in.stats(other).resolves == 0
    assert stand_in.stats(other).downloads == ()


async def test_bytes_sent_stops_counting_when_the_client_goes_away(client, stand_in) -> None:
    big = b"\0" * (64 * 1024 * 1024)
    media_id = stand_in.add_media(big, "video/mp4")
    body = await resolve(client, media_id)
    response = await client.get(local(body["url"]), headers=AUTH)
    await response.content.readexactly(100_000)
    response.close()  # drop the connection mid-body
    previous = -1
    for _ in range(250):  # until the server has noticed and stopped writing
        await asyncio.sleep(0.02)
        (record,) = stand_in.stats(media_id).downloads
        if record.bytes_sent == previous:
            break
        previous = record.bytes_sent
    assert not record.completed
    assert 100_000 <= record.bytes_sent < len(big)


# -- serving -----------------------------------------------------------------------------------


async def test_serve_runs_on_a_free_port_and_yields_the_versioned_base_url(stand_in) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    async with serve(stand_in) as base_url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v21\.0", base_url)
        async with aiohttp.ClientSession(headers=AUTH) as session:
            async with session.get(f"{base_url}/{media_id}") as response:
                body = await response.json()
            assert body["url"].startswith(base_url.removesuffix("/v21.0") + ATTACHMENTS_PATH)
            async with session.get(body["url"]) as response:
                assert await response.read() == PDF


async def test_serve_shuts_down_promptly_despite_a_stalled_download(stand_in) -> None:
    media_id = stand_in.add_media(PDF, "application/pdf")
    stand_in.stall_download(media_id)
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with serve(stand_in) as base_url:
            async with session.get(f"{base_url}/{media_id}") as response:
                url = (await response.json())["url"]
            stand_in.resolve_delay_s = 60

            async def fetch(target: str) -> bytes:
                async with session.get(target) as response:
                    return await response.read()

            stalled = asyncio.create_task(fetch(url))
            resolving = asyncio.create_task(fetch(f"{base_url}/{media_id}"))
            await asyncio.sleep(0.2)
            assert not stalled.done() and not resolving.done()
            started = time.monotonic()
        assert time.monotonic() - started < 2
        for task in (stalled, resolving):
            task.cancel()
        await asyncio.gather(stalled, resolving, return_exceptions=True)


def test_serve_in_thread_serves_synchronous_callers(stand_in) -> None:
    import httpx

    media_id = stand_in.add_media(PDF, "application/pdf")
    with serve_in_thread(stand_in) as base_url, httpx.Client(headers=AUTH) as http:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v21\.0", base_url)
        body = http.get(f"{base_url}/{media_id}").json()
        assert http.get(body["url"]).content == PDF
    with pytest.raises(httpx.ConnectError):
        httpx.get(body["url"], headers=AUTH)
