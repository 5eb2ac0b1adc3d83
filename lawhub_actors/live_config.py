"""The running configuration: one reference, swapped whole by a reload.

:class:`Settings` are frozen, so a reader that takes ``current`` once per
unit of work (a message, a request) sees one consistent version even while
a reload swaps in the next. The TOML text it came from is kept beside it
(in the same reference), so operators edit what they wrote, comments
included, not a re-rendering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import tomli_w

from lawhub_actors.settings import Settings


@dataclass(frozen=True, eq=False)
class Routes:
    """Who owns each number as of one config version (and what retired then):
    a reader that must resolve an entry the same way every time it reads it
    keeps the ``Routes`` it first used."""

    settings: Settings
    retiring: Mapping[str, str]

    def __call__(self, phone_number_id: str) -> str | None:
        return self.settings.tenant_id_for(phone_number_id) or self.retiring.get(phone_number_id)

    def same_as(self, other: Routes) -> bool:
        return self.settings is other.settings and self.retiring is other.retiring


class LiveConfig:
    def __init__(self, settings: Settings, text: str | None = None) -> None:
        self._version: tuple[Settings, str | None] = (settings, text)
        self._retiring: Mapping[str, str] = {}

    def tenant_id_for(self, phone_number_id: str) -> str | None:
        """Whose webhook updates these are: the config's owner of the number,
        or, while a number that left the config retires, its last owner (so
        the statuses of its last sends still reach them)."""
        return self.current.tenant_id_for(phone_number_id) or self._retiring.get(phone_number_id)

    def routes(self) -> Routes:
        """:meth:`tenant_id_for` as it is now, frozen."""
        return Routes(self.current, self._retiring)

    def retiring(self, numbers: Mapping[str, str]) -> None:
        """Numbers (id → tenant id) that left the config and still retire."""
        self._retiring = dict(numbers)

    @property
    def current(self) -> Settings:
        return self._version[0]

    @property
    def text(self) -> str:
        """The running config as TOML: its source text when known, else rendered."""
        settings, text = self._version
        if text is not None:
            return text
        return tomli_w.dumps(settings.model_dump(mode="json", exclude_none=True))

    def replace(self, settings: Settings, text: str | None) -> None:
        self._version = (settings, text)
