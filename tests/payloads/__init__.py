"""Meta-shaped webhook bodies (``*.json`` next to this file) and their ids.

The files are written as Meta sends them: escaped unicode (``\\ud83d...``),
string timestamps, the business numbers of ``config/lawhub.toml`` (firm-a:
``106540352242922`` and ``106540352242923``; firm-b: ``107611463353033``)
plus one number nobody owns (:data:`UNKNOWN_PNID`), and Indonesian-looking
test customers ``62812345000NN``.

    from tests.payloads import load, raw, names
    body = raw("text")            # bytes, as they would be signed and posted
    doc = load("status_failed")   # a fresh dict each call: mutate freely
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DIR = Path(__file__).resolve().parent

WABA_A = "102290129340398"
WABA_B = "102290129340399"
WABA_UNKNOWN = "102290129349999"
FIRM_A_PNID = "106540352242922"
FIRM_A_SHARED_PNID = "106540352242923"
FIRM_B_PNID = "107611463353033"
UNKNOWN_PNID = "109999999999999"

TENANTS = {FIRM_A_PNID: "firm-a", FIRM_A_SHARED_PNID: "firm-a", FIRM_B_PNID: "firm-b"}
"""phone_number_id → tenant, as config/lawhub.toml has it."""


def tenant_of(phone_number_id: str) -> str | None:
    """The ``tenant_of`` the shipped config implies."""
    return TENANTS.get(phone_number_id)


def names() -> list[str]:
    """Every fixture name (file stem), sorted."""
    return sorted(path.stem for path in DIR.glob("*.json"))


def raw(name: str) -> bytes:
    """The body exactly as stored (what Meta would sign)."""
    return (DIR / f"{name}.json").read_bytes()


def load(name: str) -> dict[str, Any]:
    """The body decoded into a fresh dict."""
    document: dict[str, Any] = json.loads(raw(name))
    return document


def dumps(document: Any) -> bytes:
    """A document as Meta would send it: compact, escaped unicode."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()
