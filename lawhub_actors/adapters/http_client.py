"""What the httpx-based adapters share: owning (or borrowing) their client."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Self

import httpx


class OwnsHttpClient:
    """Holds an ``httpx.Client``: the caller's when given one (tests inject
    transports; the caller closes it), else its own, closed by :meth:`close`
    or at the end of a ``with`` block."""

    def __init__(self, client: httpx.Client | None, make: Callable[[], httpx.Client]) -> None:
        self._owns_client = client is None
        self._client = client if client is not None else make()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            self._client.close()
