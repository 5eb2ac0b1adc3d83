"""Where each actor of the application's tree lives: every path, once.

::

    root (one_for_one)
    ├── inbound (one_for_one)
    │   ├── sessions (one_for_one)
    │   │   └── <tenant>        consistent-hash pool of session shards, keyed by customer
    │   ├── assist              round-robin pool of classifiers (masked text only)
    │   ├── media               least-busy pool of media-scan workers
    │   └── dispatcher          journal → dedupe → shards; started last, after its targets
    └── outbound (one_for_one)
        ├── limiters/<number>   GCRA: throughput and pair rate per business number
        ├── breakers/<number>   circuit breaker per business number
        └── workers             consistent-hash pool by recipient

:mod:`lawhub_actors.actors.tree` builds that shape from the ids below; every
actor, the runtime and the web layer address the actors by these paths (a
path is its ancestors' ids joined by ``/``, the root left out).
"""

from __future__ import annotations

ROOT = "root"

INBOUND = "inbound"
SESSIONS_ID = "sessions"
SESSIONS = f"{INBOUND}/{SESSIONS_ID}"
ASSIST_ID = "assist"
ASSIST = f"{INBOUND}/{ASSIST_ID}"
MEDIA_ID = "media"
MEDIA = f"{INBOUND}/{MEDIA_ID}"
DISPATCHER_ID = "dispatcher"
DISPATCHER = f"{INBOUND}/{DISPATCHER_ID}"

OUTBOUND = "outbound"
LIMITERS_ID = "limiters"
LIMITERS = f"{OUTBOUND}/{LIMITERS_ID}"
BREAKERS_ID = "breakers"
BREAKERS = f"{OUTBOUND}/{BREAKERS_ID}"
WORKERS_ID = "workers"
WORKERS = f"{OUTBOUND}/{WORKERS_ID}"


def sessions_of(tenant: str) -> str:
    """The tenant's pool of session shards."""
    return f"{SESSIONS}/{tenant}"


def limiter_of(phone_number_id: str) -> str:
    return f"{LIMITERS}/{phone_number_id}"


def breaker_of(phone_number_id: str) -> str:
    return f"{BREAKERS}/{phone_number_id}"


def number_of(path: str, group: str) -> str | None:
    """The phone number id of a limiter's or breaker's ``path`` when it is
    one of ``group`` (:data:`LIMITERS` or :data:`BREAKERS`)."""
    prefix = f"{group}/"
    return path[len(prefix):] if path.startswith(prefix) else None
