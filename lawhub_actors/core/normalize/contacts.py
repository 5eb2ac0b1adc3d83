"""A change's ``value.contacts[]``, matched to its messages and preferences (pure).

Matched by ``wa_id``, else ``user_id``; a lone contact matches an item that
names nobody. The match gives the profile name and the missing half of the
customer key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from lawhub_actors.core import payload as p
from lawhub_actors.core.normalize.scope import Scope


class Contacts:
    """The valid contacts of one change, by ``wa_id`` and by ``user_id``."""

    __slots__ = ("by_user_id", "by_wa_id", "only")

    def __init__(self, contacts: Sequence[p.Contact]) -> None:
        self.by_wa_id = {c.wa_id: c for c in contacts if c.wa_id}
        self.by_user_id = {c.user_id: c for c in contacts if c.user_id}
        self.only = contacts[0] if len(contacts) == 1 else None

    @classmethod
    def parse(cls, scope: Scope, raws: Sequence[Any]) -> Contacts:
        contacts: list[p.Contact] = []
        for k, raw in enumerate(raws):
            try:
                contacts.append(p.Contact.model_validate(raw))
            except ValidationError as exc:
                scope.warn(f"contacts[{k}]", f"invalid contact ({p.error_fields(exc)}); ignored")
        return cls(contacts)

    def match(self, wa_id: str | None, user_id: str | None) -> p.Contact | None:
        if wa_id and wa_id in self.by_wa_id:
            return self.by_wa_id[wa_id]
        if user_id and user_id in self.by_user_id:
            return self.by_user_id[user_id]
        if not wa_id and not user_id:
            return self.only
        return None
