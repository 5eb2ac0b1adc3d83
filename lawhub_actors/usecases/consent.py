"""A customer's consent changes: one path for every way it can change.

A keyword in the client's message ("STOP", "BERHENTI", …), Meta's
``user_preferences`` webhook, and a lawyer recording a consent given or
withdrawn outside WhatsApp (``PUT /api/v1/contacts/{wa_id}/consent``) all
come here, inside the transaction that records what caused them: an unknown
customer becomes a lead, the rules of :mod:`lawhub_actors.core.consent`
decide the new state, and a change is audited (once per ``source``: a
replay finds it done) together with the new state.
"""

from __future__ import annotations

from lawhub_actors.adapters.store_tx import Tx
from lawhub_actors.core.consent import ConsentChange, ConsentState, apply


def change_consent(tx: Tx, tenant: str, customer: str, change: ConsentChange, *, source: str,
                   via: str, note: str | None = None) -> ConsentState:
    """Apply ``change``; the customer's consent now. ``via`` says how it
    came, ``note`` where it came from (a lawyer's words, for the audit)."""
    known = tx.customer(tenant, customer)
    if known is None:
        tx.add_lead(tenant, customer, None)
    current = ConsentState(known.consent) if known else ConsentState.UNKNOWN
    new, changed = apply(current, change)
    if not changed:
        return current
    data: dict[str, str] = {"from": current.value, "to": new.value, "via": via}
    if note is not None:
        data["source"] = note
    if tx.audit(source, tenant, "consent", tx.ref(tenant, customer), data):
        tx.set_consent(tenant, customer, new.value)
    return new
