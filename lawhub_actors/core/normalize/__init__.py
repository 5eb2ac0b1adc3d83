"""Meta's webhook envelope → internal events (pure: no I/O, no clock, no logging).

Rules:

1. **Order.** Events come out in payload order: entries, their changes and,
   inside a ``messages`` change, its ``messages[]``, then its ``statuses[]``,
   then one :class:`~lawhub_actors.core.events.AccountErrors` for its
   value-level ``errors[]``.
2. **Routing.** A change belongs to the tenant that ``tenant_of`` returns for
   its ``metadata.phone_number_id``. An unknown id quarantines the whole
   change (:class:`~lawhub_actors.core.events.Quarantined`, never an event).
   A ``messages`` or ``user_preferences`` change without an id is
   quarantined too; other fields without one are WABA-level and pass through
   as :class:`~lawhub_actors.core.events.OtherChange` with ``tenant=None``.
3. **Isolation.** Items are validated one by one: a malformed message,
   status or preference is quarantined alone and the rest of the batch goes
   on. :func:`normalize` never raises on an
   :class:`~lawhub_actors.core.payload.models.Envelope` (only ``tenant_of``
   could).
4. **Customer key.** ``from`` / ``wa_id``, else the business-scoped
   ``from_user_id`` / ``user_id`` where ``wa_id`` is empty or missing.
   ``value.contacts[]`` are matched to messages by ``wa_id`` (else
   ``user_id``; a lone contact matches a message that names nobody) for the
   profile name and the missing half of the key. No key at all: quarantined.
5. **Unknown values** (message type, status, interactive type, preference
   value) never crash: UNKNOWN (or pass-through) plus a warning; the raw
   string is kept (``details["raw_type"]``, ``StatusUpdate.raw_status``).
   A missing timestamp becomes 0, with a warning.
6. **Impossible timestamps.** A message, status or preference whose
   timestamp is present but no time Meta can mean (not a number, negative,
   milliseconds, ``1e308``, past 64 bits: anything outside
   :func:`~lawhub_actors.core.limits.plausible_timestamp`, 2009 to 2100) is
   quarantined alone (``bad_timestamp``), like a malformed item, so it never
   reaches a store transaction it would break on every replay; the other
   updates of the body go on.
7. **Warnings are data** and may be logged as they are: positions
   (``entry[0].changes[1].messages[2]``), field names, Meta's type names
   when they look like enum names, and reasons; never message content,
   names or numbers.

This package re-exports what callers use; each part lives in a module of
its own:

- :mod:`~lawhub_actors.core.normalize.changes`: :func:`normalize`, and each
  change routed to its tenant and to the handler of its field.
- :mod:`~lawhub_actors.core.normalize.messages`,
  :mod:`~lawhub_actors.core.normalize.statuses`,
  :mod:`~lawhub_actors.core.normalize.preferences`: one kind of item each.
- :mod:`~lawhub_actors.core.normalize.contacts`: contacts matched to items.
- :mod:`~lawhub_actors.core.normalize.errors`: Meta's error objects.
- :mod:`~lawhub_actors.core.normalize.scope`: where results go, and the
  timestamp checks every item shares.

What each message type puts in ``text`` and ``details``:
:mod:`lawhub_actors.core.message_body`.
"""

from lawhub_actors.core.normalize.changes import PHONE_NUMBER_FIELDS, Batch, TenantOf, normalize

__all__ = ["PHONE_NUMBER_FIELDS", "Batch", "TenantOf", "normalize"]
