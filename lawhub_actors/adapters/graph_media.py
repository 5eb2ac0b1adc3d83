"""Downloads inbound WhatsApp media from Meta's Graph API, with a size cap.

Two steps, both with ``Authorization: Bearer <access token>``::

    GET {base_url}/{media_id}  ->  {"url", "mime_type", "sha256", "file_size", "id"}
    GET {url}                  ->  the bytes (the URL expires 5 minutes after it was issued)

:meth:`GraphMedia.download` streams the bytes in chunks and never holds more
than one chunk past ``limit``; it refuses before reading when the declared
``file_size`` or ``Content-Length`` is over the limit. A 401/403/404 from the
download URL (expired, or never valid for us) is answered by resolving the
media id again, once, and retrying with the fresh URL.

Failures are exceptions, classified for the caller's retry policy::

    MediaFetchError                 .transient, .status (HTTP) and .code (Meta's error.code)
    ├── MediaUnavailable            transient=True: retry later with backoff
    │     timeouts (each phase ``timeout_s``), transport errors, 5xx, 408, 429,
    │     Meta codes 1, 2, 4, 80007, 130429, 131000, 131016, 131057, 133004,
    │     a malformed 200 from the resolve, and a fresh URL refused again (below)
    ├── MediaRefused                transient=False: do not retry
    │     any other Meta code: 100 (unknown or expired media id), 131052 (over
    │     100 MB), 190 (bad token), …; without a code, any other 4xx
    └── MediaTooLarge               transient=False; .bytes_read and .limit
          declared size over the limit (bytes_read=0), or the body passed it

Meta's ``error.code`` decides first, the HTTP status second (Meta says its
HTTP statuses are not to be relied on).

A URL that is refused (401/403/404) right after a fresh resolve is
``MediaUnavailable``: the Graph API has just vouched for the media id and
our token, so the CDN disagreeing is a race or clock skew, not a verdict;
a retry starts from a new resolve, which answers authoritatively (100 or
190 there is ``MediaRefused``). Dead-lettering a client's document on that
evidence would lose it for nothing; the retry budget bounds the cost.

Synchronous on purpose (it runs on actor threads). Nothing is logged here,
and no exception message carries a body, a URL or the token.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from lawhub_actors.adapters.graph_http import json_object, read_capped
from lawhub_actors.adapters.http_client import OwnsHttpClient

__all__ = [
    "GraphMedia",
    "MediaFetchError",
    "MediaInfo",
    "MediaRefused",
    "MediaTooLarge",
    "MediaUnavailable",
]

TRANSIENT_CODES = frozenset({1, 2, 4, 80007, 130429, 131000, 131016, 131057, 133004})
_URL_REFUSED = frozenset({401, 403, 404})
_ERROR_BODY_CAP = 64 * 1024  # read at most this much of an error body
_RESOLVE_BODY_CAP = 256 * 1024
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


class MediaFetchError(Exception):
    """A media could not be fetched. ``transient`` says whether a later retry may work."""

    transient: bool = False

    def __init__(self, reason: str, *, status: int | None = None, code: int | None = None) -> None:
        details = [reason]
        if status is not None:
            details.append(f"HTTP {status}")
        if code is not None:
            details.append(f"Meta code {code}")
        super().__init__(", ".join(details))
        self.reason = reason
        self.status = status
        self.code = code


class MediaUnavailable(MediaFetchError):
    transient = True


class MediaRefused(MediaFetchError):
    transient = False


class MediaTooLarge(MediaFetchError):
    transient = False

    def __init__(self, bytes_read: int, limit: int, *, declared: int | None = None) -> None:
        reason = (
            f"declared size {declared} over the limit {limit}"
            if declared is not None
            else f"body passed the limit {limit} after {bytes_read} bytes"
        )
        super().__init__(reason)
        self.bytes_read = bytes_read
        self.limit = limit
        self.declared = declared


@dataclass(frozen=True, slots=True)
class MediaInfo:
    id: str
    url: str
    mime_type: str
    sha256: str  # lowercase hex ("" when Meta gave none)
    file_size: int | None


def classify(status: int | None, code: int | None, reason: str) -> MediaFetchError:
    """The exception for an error answer: Meta's ``code`` first, the HTTP ``status`` second."""
    if code is not None:
        kind: type[MediaFetchError] = (
            MediaUnavailable if code in TRANSIENT_CODES else MediaRefused
        )
    elif status is not None and (status >= 500 or status in (408, 429)):
        kind = MediaUnavailable
    else:
        kind = MediaRefused
    return kind(reason, status=status, code=code)


class GraphMedia(OwnsHttpClient):
    """Resolve and download WhatsApp media with a bearer token."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        timeout_s: float = 10.0,
        chunk_size: int = 64 * 1024,
        client: httpx.Client | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        if not access_token:
            raise ValueError("access_token must not be empty")
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {access_token}"}
        self._timeout = httpx.Timeout(timeout_s)
        self._chunk_size = chunk_size
        super().__init__(client, lambda: httpx.Client(timeout=self._timeout))

    # -- resolve -----------------------------------------------------------------------------

    def resolve(self, media_id: str) -> MediaInfo:
        """``GET {base_url}/{media_id}``: where to download the media, and what Meta says it is."""
        if not media_id:
            raise ValueError("media_id must not be empty")
        url = f"{self._base_url}/{quote(media_id, safe='')}"
        try:
            with self._client.stream(
                "GET", url, headers=self._headers, timeout=self._timeout
            ) as response:
                body = read_capped(response, _RESOLVE_BODY_CAP)
        except httpx.TimeoutException:
            raise MediaUnavailable("resolve timed out") from None
        except httpx.HTTPError:
            raise MediaUnavailable("resolve failed in transport") from None
        if not response.is_success:
            raise classify(response.status_code, _meta_code(body), "resolve refused")
        return _media_info(media_id, body)

    # -- download ----------------------------------------------------------------------------

    def download(self, media_id: str, limit: int) -> Iterator[bytes]:
        """Resolve ``media_id`` and stream its bytes, at most ``limit`` of them.

        A generator: nothing happens before the first ``next()``. When it raises midway,
        the chunks already yielded are a prefix only; discard them. Closing it early
        closes the connection.
        """
        if limit < 0:
            raise ValueError("limit must not be negative")
        info = self.resolve(media_id)
        _check_declared(info.file_size, limit)
        for attempt in (1, 2):
            try:
                with self._client.stream(
                    "GET",
                    info.url,
                    headers={**self._headers, "Accept-Encoding": "identity"},
                    timeout=self._timeout,
                    follow_redirects=True,  # httpx drops Authorization on a cross-origin hop
                ) as response:
                    refused = attempt == 1 and response.status_code in _URL_REFUSED
                    if not refused:
                        yield from self._body(response, limit, refused_again=attempt == 2)
            except httpx.TimeoutException:
                raise MediaUnavailable("download timed out") from None
            except (httpx.HTTPError, httpx.InvalidURL):
                raise MediaUnavailable("download failed in transport") from None
            if not refused:
                return
            info = self.resolve(media_id)  # the URL expired: once, with a fresh one
            _check_declared(info.file_size, limit)

    def _body(
        self, response: httpx.Response, limit: int, *, refused_again: bool
    ) -> Iterator[bytes]:
        status = response.status_code
        if not response.is_success:
            code = _meta_code(read_capped(response, _ERROR_BODY_CAP))
            if refused_again and status in _URL_REFUSED and code is None:
                raise MediaUnavailable("fresh download URL refused again", status=status)
            raise classify(status, code, "download refused")
        declared = _content_length(response)
        if declared is not None:
            _check_declared(declared, limit)
        bytes_read = 0
        for chunk in response.iter_bytes(self._chunk_size):
            bytes_read += len(chunk)
            if bytes_read > limit:
                raise MediaTooLarge(bytes_read, limit)
            yield chunk


def _check_declared(size: int | None, limit: int) -> None:
    if size is not None and size > limit:
        raise MediaTooLarge(0, limit, declared=size)


def _meta_code(body: bytes) -> int | None:
    """``error.code`` of a Graph API error body, if it is one."""
    document = json_object(body)
    error = document.get("error") if document is not None else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _media_info(media_id: str, body: bytes) -> MediaInfo:
    document = json_object(body)
    if document is None:
        raise MediaUnavailable("resolve answered something else than a JSON object")
    url = document.get("url")
    mime_type = document.get("mime_type")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise MediaUnavailable("resolve answer has no usable url")
    if not isinstance(mime_type, str) or not mime_type:
        raise MediaUnavailable("resolve answer has no mime_type")
    answered_id = document.get("id")
    return MediaInfo(
        id=answered_id if isinstance(answered_id, str) and answered_id else media_id,
        url=url,
        mime_type=mime_type,
        sha256=_hex_sha256(document.get("sha256")),
        file_size=_file_size(document.get("file_size")),
    )


def _hex_sha256(value: object) -> str:
    """Lowercase hex; Meta gives hex here, but base64 (as in webhooks) is accepted too."""
    if not isinstance(value, str) or not value:
        return ""
    if _HEX_SHA256.fullmatch(value):
        return value.lower()
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return digest.hex() if len(digest) == 32 else ""


def _file_size(value: object) -> int | None:
    """Meta documents an int; some captures show a decimal string. Anything else: unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
