"""Meta's webhook envelope as pydantic models: the boundary of the normalizer (pure).

This package re-exports everything its modules offer; each part lives in a
module of its own:

- :mod:`~lawhub_actors.core.payload.parsing`: :func:`parse` of a body (JSON,
  its depth, the skeleton every update shares) and :class:`PayloadError`.
- :mod:`~lawhub_actors.core.payload.models`: the skeleton and the item
  models the normalizer validates one at a time.
- :mod:`~lawhub_actors.core.payload.scalars`: how numbers, flags and
  timestamps Meta sends in more than one form are read.
"""

from lawhub_actors.core.payload.models import (
    Button,
    Change,
    Contact,
    Context,
    Conversation,
    Entry,
    Envelope,
    ErrorData,
    ErrorObject,
    Interactive,
    Location,
    Media,
    Message,
    Metadata,
    NfmReply,
    Order,
    Origin,
    Pricing,
    Profile,
    Reaction,
    Referral,
    ReplyChoice,
    Status,
    System,
    Text,
    Unsupported,
    UserPreference,
    Value,
)
from lawhub_actors.core.payload.parsing import (
    WABA_OBJECT,
    PayloadError,
    PayloadErrorCode,
    error_fields,
    parse,
    parse_document,
)
from lawhub_actors.core.payload.scalars import (
    NOT_A_TIME,
    LenientBool,
    LenientFloat,
    LenientInt,
    Timestamp,
)

__all__ = [
    "NOT_A_TIME",
    "WABA_OBJECT",
    "Button",
    "Change",
    "Contact",
    "Context",
    "Conversation",
    "Entry",
    "Envelope",
    "ErrorData",
    "ErrorObject",
    "Interactive",
    "LenientBool",
    "LenientFloat",
    "LenientInt",
    "Location",
    "Media",
    "Message",
    "Metadata",
    "NfmReply",
    "Order",
    "Origin",
    "PayloadError",
    "PayloadErrorCode",
    "Pricing",
    "Profile",
    "Reaction",
    "Referral",
    "ReplyChoice",
    "Status",
    "System",
    "Text",
    "Timestamp",
    "Unsupported",
    "UserPreference",
    "Value",
    "error_fields",
    "parse",
    "parse_document",
]
