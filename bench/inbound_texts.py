"""Distinct, signed inbound text webhooks for the benches that post them.

Every message is new to the gateway: a fresh wamid and a text of its own
(:func:`bench.core_cost.messages`: short Indonesian and English WhatsApp
texts with phones, emails, NIKs, names and harmless numbers, from a fixed
seed), so a bench measures the processing of messages, not the dedupe
path that drops a body seen before. Each distinct profile name is one
customer (a ``wa_id`` of its own) writing to one of the three business
numbers of ``config/lawhub.toml`` (two of firm-a's, one of firm-b's).

A POST carries ``per_post`` updates, one change each, all to the same
business number, as Meta batches them; with ``per_post`` 1 it is one
message per POST.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.common import SECRET
from bench.core_cost import messages
from lawhub_actors.simulator import traffic

NUMBERS = {"106540352242922": "firm-a", "106540352242923": "firm-a",
           "107611463353033": "firm-b"}
"""The business numbers of ``config/lawhub.toml`` and their tenants."""
TOKENS = {"firm-a": "demo-token-firm-a", "firm-b": "demo-token-firm-b"}
"""Each tenant's API token, as ``config/lawhub.toml``'s comments give them."""
PROFILES = 3000
"""Profiles drawn for the senders (some names come out twice: ~2,000 customers)."""


@dataclass(frozen=True, slots=True)
class Webhook:
    """One signed POST and what it carries."""

    post: traffic.SignedPost
    number: str
    """The business number (``phone_number_id``) its updates are for."""
    wamids: tuple[str, ...]
    customers: tuple[str, ...]
    """The sender (``wa_id``) of each update, in order."""


def webhooks(count: int, per_post: int = 1, *, seed: int = 10,
             profiles: int = PROFILES) -> list[Webhook]:
    """``count`` distinct text messages in POSTs of ``per_post`` updates."""
    batch = messages(count, seed=seed, customers=profiles)
    wa_ids: dict[str, str] = {}
    numbers = list(NUMBERS)
    by_number: dict[str, list[tuple[str, str, str]]] = {number: [] for number in numbers}
    for message in batch:
        profile = message.names[0]
        wa_id = wa_ids.setdefault(profile, f"62812{len(wa_ids):08d}")
        number = numbers[int(wa_id) % len(numbers)]
        by_number[number].append((wa_id, profile, message.text))
    now = int(time.time())
    chunks = [[list(part[i:i + per_post]) for i in range(0, len(part), per_post)]
              for part in by_number.values()]
    out: list[Webhook] = []
    secret = SECRET.encode()
    for chunk in itertools.chain.from_iterable(itertools.zip_longest(*chunks)):
        if chunk is None:
            continue
        number = numbers[int(chunk[0][0]) % len(numbers)]
        ids = tuple(traffic.wamid() for _ in chunk)
        changes = [traffic.text_message(number, wa_id, text, message_id=wamid,
                                        timestamp=now + len(out), name=profile)
                   for (wa_id, profile, text), wamid in zip(chunk, ids, strict=True)]
        out.append(Webhook(traffic.signed(traffic.envelope(*changes), secret), number, ids,
                           tuple(wa_id for wa_id, _, _ in chunk)))
    return out


def posts(hooks: Sequence[Webhook]) -> list[traffic.SignedPost]:
    return [hook.post for hook in hooks]
