"""A local stand-in for Meta's Graph API (media and sending), served by aiohttp.

Behaves like Meta where the gateway can tell the difference::

    GET /{version}/{media_id}                        Authorization: Bearer <token>
    200  {"messaging_product": "whatsapp", "url": "<absolute URL on this server>",
          "mime_type": "...", "sha256": "<lowercase hex>", "file_size": <int>,
          "id": "<media_id>"}
    400  unknown id: code 100, error_subcode 33, GraphMethodException
    401  missing or wrong token: code 190, OAuthException

    GET /whatsapp_business/attachments/?mid=<media_id>&ext=<expiry epoch>&hash=<token>
         (lookaside.fbsbx.com's shape, served by the same app; bearer token required)
    200  the bytes, ``Content-Type`` = the media's mime type, ``Content-Length``
    404  the URL expired (``url_ttl_s`` after it was handed out) or was never issued

    POST /{version}/{phone_number_id}/messages      Authorization: Bearer <token>
    200  {"messaging_product": "whatsapp", "contacts": [{"input": "<to>", "wa_id": "<digits>"}],
          "messages": [{"id": "wamid.…"}]}          (accepted, not delivered)
    400  code 100: a required parameter missing or invalid ("(#100) The parameter to is
         required."), an unknown phone number id (subcode 33, GraphMethodException)
    400  code 130429 over the number's throughput, 131056 over the pair rate,
         132000 / 132001 / 132015 / 132016 when templates are registered
    401  code 190 (token)

Every error body is Meta's: ``{"error": {"message", "type", "code",
["error_subcode"], ["error_data"], "fbtrace_id"}}`` (see :func:`graph_error`).

State and failure modes are set on :class:`GraphStandIn` — ``add_media``,
``expire_urls``, ``fail_next``, ``fail_downloads_next``, ``slow_download``,
``stall_download``, ``resolve_delay_s`` — and what the clients did is read
back with :meth:`GraphStandIn.stats` (resolves, and per download its status
and the bytes the server actually wrote before the client went away).

Sending (see :meth:`.sends.Sends.handle` for the order of the checks): the throughput
limit per phone number (``throughput_mps``, :meth:`~GraphStandIn.set_throughput`) counts
accepted messages over any sliding 1-second window of arrival time; the pair rate per
(phone number, recipient) is a GCRA of one message per ``pair_interval_s`` with bursts
of ``pair_burst`` (:meth:`~GraphStandIn.set_pair_rate`); ``None`` switches either off.
Failures are scripted with ``fail_sends_next``, ``timeout_sends_next``,
``accept_then_fail_next`` and ``send_latency_s``; every request is kept in ``sends``
(:class:`SendRecord`, with its arrival time by ``clock``). After
:meth:`~GraphStandIn.deliver_statuses_to`, each accepted message is followed by its
status webhooks (signed, in order, retried on a non-200), recorded in ``status_posts``;
``fail_status_for_next`` turns the next ones into ``failed`` with Meta's ``errors[]``.

Run it with :func:`serve` (async, on the caller's loop) or
:func:`serve_in_thread` (its own loop in a daemon thread, for synchronous
code such as actors). Both yield the base URL, ``http://127.0.0.1:<port>/v21.0``,
which is what ``LAWHUB_GRAPH_BASE_URL`` takes. Later additions go into
:meth:`GraphStandIn._routes`, each handler in the module of its concern:

- :mod:`.stand_in`: :class:`GraphStandIn`, the front (token, clock, setters, the app);
- :mod:`.server`: :func:`serve` and :func:`serve_in_thread`;
- :mod:`.errors`: Meta's error bodies and the WhatsApp codes' titles;
- :mod:`.media`: media metadata, download URLs and the bytes;
- :mod:`.validation`: :class:`SendRecord`, the business's numbers and templates, and
  Meta's checks on a send;
- :mod:`.limits`: throughput and pair rate;
- :mod:`.sends`: the messages endpoint and its scripted failures;
- :mod:`.webhooks`: status webhooks (:class:`StatusPost`);
- :mod:`.shutdown`: the signal that ends stalls and delays when the server stops.

The setters are plain assignments and ``deque`` operations, so calling them
from another thread than the serving loop's is safe under the GIL; counters
are written only by the serving loop.
"""

from __future__ import annotations

from lawhub_actors.simulator.graph.errors import graph_error, whatsapp_error
from lawhub_actors.simulator.graph.media import ATTACHMENTS_PATH, DownloadRecord, MediaStats
from lawhub_actors.simulator.graph.server import GRAPH_VERSION, serve, serve_in_thread
from lawhub_actors.simulator.graph.stand_in import GraphStandIn
from lawhub_actors.simulator.graph.validation import SendRecord
from lawhub_actors.simulator.graph.webhooks import StatusPost

__all__ = [
    "ATTACHMENTS_PATH",
    "GRAPH_VERSION",
    "DownloadRecord",
    "GraphStandIn",
    "MediaStats",
    "SendRecord",
    "StatusPost",
    "graph_error",
    "serve",
    "serve_in_thread",
    "whatsapp_error",
]
