"""What the inbound side records besides updates: quarantine for operators,
the account-level changes Meta sends (``account_errors`` and fields not
processed yet), audited, and whatever else the first read of a journal
entry found. Functions of the store, called by the dispatcher (and the
shards' error reports use :func:`describe`).

Quarantining never stops the reader: data that cannot be stored is replaced
by why (the journal keeps the body); only a store that cannot commit at all
(``StoreUnavailable``) is raised.
"""

from __future__ import annotations

from typing import Any

import structlog

from lawhub_actors.actors.entry_reader import FirstFound
from lawhub_actors.adapters.store import Store, StoreUnavailable
from lawhub_actors.adapters.store_tx import OPERATORS, Tx
from lawhub_actors.core.events import AccountErrors, OtherChange
from lawhub_actors.core.payload import PayloadError

log = structlog.get_logger("lawhub.dispatcher")



def describe(error: BaseException) -> str:
    """An error as operators read it in quarantine and logs (bounded)."""
    return f"{type(error).__name__}: {error}"[:500]


def quarantine(store: Store, seq: int, phone_number_id: str | None, reason: str,
               data: Any) -> None:
    log.warning("quarantined", journal_seq=seq, phone_number_id=phone_number_id, reason=reason)
    try:
        store.write(lambda tx: tx.quarantine(seq, phone_number_id, reason, data))
    except StoreUnavailable:
        raise
    except Exception as error:  # noqa: BLE001 - the data itself cannot be stored
        unstorable = {"unstorable": describe(error)}
        store.write(lambda tx: tx.quarantine(seq, phone_number_id, reason, unstorable))


def record_account_changes(store: Store, seq: int, events: tuple[object, ...]) -> None:
    """Audit journal entry ``seq``'s account errors and other changes, once each."""
    changes = [e for e in events if isinstance(e, AccountErrors | OtherChange)]
    if not changes:
        return

    def record(tx: Tx) -> None:
        for index, event in enumerate(changes):
            tenant = event.tenant or OPERATORS
            if isinstance(event, AccountErrors):
                data: dict[str, Any] = {"errors": [
                    {"code": e.code, "title": e.title, "message": e.message,
                     "details": e.details} for e in event.errors
                ]}
                kind = "account_errors"
            else:
                data, kind = {"field": event.field, "value": dict(event.value)}, event.field
            tx.audit(f"journal:{seq}:{index}", tenant, kind, event.phone_number_id or "", data)

    store.write(record)


def record_first_read(store: Store, seq: int, found: FirstFound) -> None:
    """Record what the first read of journal entry ``seq`` found besides its
    updates: a payload that cannot be parsed, quarantined changes, warnings,
    account changes. A failure to record an account change is quarantined:
    the entry's updates go on."""
    if isinstance(found, PayloadError):
        quarantine(store, seq, None, found.code, {"error": str(found)})
        return
    for warning in found.warnings:
        log.warning("normalize_warning", warning=warning, journal_seq=seq)
    for item in found.quarantined:
        quarantine(store, seq, item.phone_number_id, item.reason, {
            "waba_id": item.waba_id, "field": item.field, "change": item.change,
        })
    try:
        record_account_changes(store, seq, found.events)
    except StoreUnavailable:
        raise
    except Exception as error:  # noqa: BLE001 - the updates still go on
        quarantine(store, seq, None, "account_change_failed", {"error": describe(error)})
