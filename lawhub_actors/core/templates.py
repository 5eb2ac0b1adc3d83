"""Checking a template send against the tenant's templates (pure).

A template send is refused *before* it reaches Meta when Meta would refuse
it anyway (FACTS.md "Templates"; Meta error 132000, 132001, 132015, 132016,
132018). Rules, checked in this order — the first that fails is the refusal:

1. ``unknown_template``: no template of that name for that tenant in that
   language (a template is approved per language: ``id`` ≠ ``en_US``).
   Names and languages compare exactly, as Meta does. A template of
   another tenant is unknown, never "not approved": tenants do not learn
   about each other's templates.
2. ``template_not_approved``: its status is not ``approved`` (pending,
   rejected, paused, disabled, …); the message names the status. Statuses
   compare case-insensitively (Meta writes ``APPROVED``).
3. ``wrong_param_count``: not exactly the template's number of parameters.
4. ``invalid_param``: a parameter that is empty after stripping, holds a
   newline (``\\n``, ``\\r``) or tab, or more than 4 consecutive spaces
   (Meta: 132018). The message names the parameter as ``{{n}}`` (1-based,
   as in the template body) and never echoes its content: parameters carry
   client data.

When a tenant somehow holds the same name and language twice, an approved
one wins; the check is otherwise independent of the order of ``templates``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

RefusalCode = Literal[
    "unknown_template", "template_not_approved", "wrong_param_count", "invalid_param"
]

APPROVED = "approved"

_CONTROL = re.compile(r"[\n\r\t]")
_SPACE_RUN = re.compile(r" {5,}")


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """One message template of a tenant, as approved (or not) by Meta."""

    tenant: str
    name: str
    language: str
    category: str  # MARKETING | UTILITY | AUTHENTICATION
    status: str  # approved | pending | rejected | paused | disabled | …
    params: int  # number of body parameters {{1}}..{{n}}

    @property
    def approved(self) -> bool:
        return self.status.strip().lower() == APPROVED


class TemplateRefusal(Exception):
    """Why a template send is refused; ``code`` is stable, ``message`` for people."""

    def __init__(self, code: RefusalCode, message: str, *, index: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code: RefusalCode = code
        self.message = message
        self.index = index  # invalid_param: 1-based position of the parameter


def param_problem(value: str) -> str | None:
    """What makes one parameter unsendable (``None`` when it is fine)."""
    if not value.strip():
        return "is empty"
    if _CONTROL.search(value):
        return "contains a newline or tab"
    if _SPACE_RUN.search(value):
        return "contains more than 4 consecutive spaces"
    return None


def check_template(
    templates: Iterable[TemplateSpec],
    tenant: str,
    name: str,
    language: str,
    params: Sequence[str],
) -> TemplateSpec:
    """The tenant's template to send with ``params``; raises :class:`TemplateRefusal`."""
    candidates = [
        t for t in templates if t.tenant == tenant and t.name == name and t.language == language
    ]
    if not candidates:
        raise TemplateRefusal("unknown_template", f"no template {name!r} in language {language!r}")
    approved = [t for t in candidates if t.approved]
    spec = min(approved or candidates, key=_order)
    if not spec.approved:
        raise TemplateRefusal(
            "template_not_approved",
            f"template {name!r} ({language}) is {spec.status.strip().lower()}, not approved",
        )
    if len(params) != spec.params:
        raise TemplateRefusal(
            "wrong_param_count",
            f"template {name!r} takes {spec.params} parameter(s), got {len(params)}",
        )
    for index, value in enumerate(params, start=1):
        problem = param_problem(value)
        if problem is not None:
            raise TemplateRefusal(
                "invalid_param", f"parameter {{{{{index}}}}} {problem}", index=index
            )
    return spec


def _order(spec: TemplateSpec) -> tuple[str, str, int]:
    return (spec.status.strip().lower(), spec.category, spec.params)
