"""``[storage] journal_tail_bytes``: the journal's in-memory tail, in bytes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lawhub_actors.adapters.journal import TAIL_BYTES
from lawhub_actors.settings import Storage


def test_the_journal_tail_defaults_to_the_journals_own_budget() -> None:
    assert Storage().journal_tail_bytes == TAIL_BYTES == 8 * 1024 * 1024


def test_the_journal_tail_may_be_zero_but_not_negative() -> None:
    assert Storage(journal_tail_bytes=0).journal_tail_bytes == 0
    with pytest.raises(ValidationError):
        Storage(journal_tail_bytes=-1)
