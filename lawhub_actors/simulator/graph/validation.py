"""A send as the stand-in records it (:class:`SendRecord`), and Meta's checks on it before
any limit: the business phone number (400, subcode 33), the parameters (code 100) and the
registered templates (1320xx), against what :class:`Business` knows."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from lawhub_actors.simulator import traffic
from lawhub_actors.simulator.graph.errors import Refused, graph_error, unknown_object

DEFAULT_DISPLAY_NUMBER = "6281110000001"
DEFAULT_COUNTRY_CODE = "62"
TEXT_BODY_MAX = 4096
CALLBACK_DATA_MAX = 512
MESSAGE_TYPES = (
    "audio", "contacts", "document", "image", "interactive", "location", "reaction",
    "sticker", "template", "text", "video",
)
_PHONE_FORMATTING = re.compile(r"[\s().-]")
_PARAM_WHITESPACE = re.compile(r"[\n\t]| {5,}")


@dataclass(slots=True)
class SendRecord:
    """One ``POST /{version}/{phone_number_id}/messages`` as the stand-in saw and answered it.

    The request fields are taken as sent, whatever their validity (``None`` when absent or
    of the wrong JSON type).
    """

    at: float  # arrival time, by the stand-in's ``clock``
    phone_number_id: str
    to: str | None  # as given
    wa_id: str | None  # the recipient ``to`` resolved to (None when it was refused before)
    type: str | None  # as given ("text" when absent: Meta's default)
    body: Any  # text: the body string; template and other types: their object
    callback: str | None  # ``biz_opaque_callback_data``
    request: Any  # the whole JSON document (None when the body was not JSON)
    status: int | None = None  # HTTP status answered; None: not (yet) answered
    code: int | None = None  # Meta's ``error.code`` answered; None for a 200
    wamid: str | None = None  # set when Meta took the message, even if the answer failed

    @property
    def sent(self) -> bool:
        """Meta took the message: it goes out and its status webhooks follow."""
        return self.wamid is not None


async def read_send(request: web.Request, at: float) -> SendRecord:
    """The record of the send ``request``, which arrived ``at``, before any check."""
    try:
        document: Any = json.loads(await request.read())
    except ValueError:
        document = None
    fields = document if isinstance(document, dict) else {}
    kind = fields.get("type", "text")
    kind = kind if isinstance(kind, str) else None
    body: Any = fields.get(kind) if kind is not None else None
    if kind == "text" and isinstance(body, dict):
        body = body.get("body")
    return SendRecord(
        at=at,
        phone_number_id=request.match_info["phone_number_id"],
        to=_str_or_none(fields.get("to")),
        wa_id=None,
        type=kind,
        body=body,
        callback=_str_or_none(fields.get("biz_opaque_callback_data")),
        request=document,
    )


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A business phone number: how statuses show it, and what a local ``to`` is in."""

    display: str
    country_code: str
    waba_id: str


@dataclass(frozen=True, slots=True)
class _Template:
    params: int
    category: str
    status: str


_DEFAULT_NUMBER = PhoneNumber(DEFAULT_DISPLAY_NUMBER, DEFAULT_COUNTRY_CODE, traffic.WABA_ID)


class Business:
    """The business phone numbers and message templates Meta knows, and the checks a send
    gets against them; :class:`~lawhub_actors.simulator.graph.GraphStandIn` documents the
    setters."""

    def __init__(self) -> None:
        self._numbers: dict[str, PhoneNumber] = {}
        self._templates: dict[tuple[str, str], _Template] = {}

    def add_phone_number(
        self, phone_number_id: str, display_phone_number: str, *, country_code: str, waba_id: str
    ) -> None:
        if not country_code.isdigit():
            raise ValueError("country_code must be digits")
        self._numbers[phone_number_id] = PhoneNumber(display_phone_number, country_code, waba_id)

    def add_template(
        self, name: str, language: str, *, params: int, category: str, status: str
    ) -> None:
        if params < 0:
            raise ValueError("params must not be negative")
        self._templates[(name, language)] = _Template(params, category.upper(), status.upper())

    def check(self, record: SendRecord) -> tuple[PhoneNumber, dict[str, Any] | None]:
        """Meta's checks before any limit, in its order (raising :class:`Refused`); fills
        ``record.wa_id``. The sending number and the template object (None: not a
        template)."""
        number = self._number(record.phone_number_id)
        template = _validate(record, number)
        self._check_template(template)
        return number, template

    def category(self, template: dict[str, Any] | None) -> str | None:
        """The pricing category of a send of ``template``, lowercase (None: not a template).
        An unregistered template counts as utility."""
        if template is None:
            return None
        known = self._templates.get((template["name"], template["language"]["code"]))
        return known.category.lower() if known is not None else "utility"

    def _number(self, phone_number_id: str) -> PhoneNumber:
        if not self._numbers:
            return _DEFAULT_NUMBER
        number = self._numbers.get(phone_number_id)
        if number is None:
            raise Refused(unknown_object("post", phone_number_id), 100)
        return number

    def _check_template(self, template: dict[str, Any] | None) -> None:
        if template is None or not self._templates:
            return
        name, language = template["name"], template["language"]["code"]
        known = self._templates.get((name, language))
        if known is None or known.status not in ("APPROVED", "PAUSED", "DISABLED"):
            raise Refused.whatsapp(
                400, 132001, details=f"template name ({name}) does not exist in {language}"
            )
        if known.status == "PAUSED":
            raise Refused.whatsapp(
                400, 132015, details=f"Template {name} is paused due to low quality"
            )
        if known.status == "DISABLED":
            raise Refused.whatsapp(400, 132016, details=f"Template {name} is disabled")
        given = _body_params(template)
        if given != known.params:
            raise Refused.whatsapp(
                400, 132000,
                details=f"body: number of localizable_params ({given}) does not match the "
                f"expected number of params ({known.params})",
            )


def _validate(record: SendRecord, number: PhoneNumber) -> dict[str, Any] | None:
    """Meta's parameter checks (code 100); fills ``record.wa_id``; the template object."""
    document = record.request if isinstance(record.request, dict) else {}
    product = document.get("messaging_product")
    if product is None:
        raise _required("messaging_product")
    if product != "whatsapp":
        raise _invalid(
            f'Param messaging_product must be one of {{WHATSAPP}} - got "{product}".'
        )
    recipient_type = document.get("recipient_type", "individual")
    if recipient_type not in ("individual", "group"):
        raise _invalid(
            "Param recipient_type must be one of {INDIVIDUAL, GROUP} - got "
            f'"{recipient_type}".'
        )
    to = document.get("to")
    if to is None or to == "":
        raise _required("to")
    if not isinstance(to, str):
        raise _invalid("Param to must be a string.")
    record.wa_id = _wa_id(to, number.country_code)
    if record.wa_id is None:
        raise _invalid("Invalid parameter", details="Invalid value for parameter 'to'")
    kind = document.get("type", "text")
    if kind not in MESSAGE_TYPES:
        raise _invalid(
            f"Param type must be one of {{{', '.join(t.upper() for t in MESSAGE_TYPES)}}}"
            f' - got "{kind}".'
        )
    callback = document.get("biz_opaque_callback_data")
    if callback is not None and not isinstance(callback, str):
        raise _invalid("Param biz_opaque_callback_data must be a string.")
    if callback is not None and len(callback) > CALLBACK_DATA_MAX:
        raise _invalid(
            f"Param biz_opaque_callback_data must be at most {CALLBACK_DATA_MAX} "
            "characters long."
        )
    if kind == "text":
        _validate_text(document.get("text"))
        return None
    if kind == "template":
        return _validate_template(document.get("template"))
    if not isinstance(document.get(kind), dict):
        raise _required(kind)
    return None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _wa_id(to: str, country_code: str) -> str | None:
    """The recipient Meta makes of ``to``: formatting dropped; without ``+`` the business
    number's country code is prepended (as Meta does)."""
    international = to.strip().startswith("+")
    digits = _PHONE_FORMATTING.sub("", to).removeprefix("+")
    if not digits.isdigit() or not digits.isascii():
        return None
    wa_id = digits if international else country_code + digits
    return wa_id if 7 <= len(wa_id) <= 15 else None


def _required(parameter: str) -> Refused:
    return Refused(graph_error(400, 100, f"(#100) The parameter {parameter} is required."), 100)


def _invalid(message: str, *, details: str | None = None) -> Refused:
    return Refused(graph_error(400, 100, f"(#100) {message}", details=details), 100)


def _validate_text(text: object) -> None:
    body = text.get("body") if isinstance(text, dict) else None
    if not isinstance(body, str) or not body:
        raise _required("text.body")
    if len(body) > TEXT_BODY_MAX:
        raise _invalid(f"Param text['body'] must be at most {TEXT_BODY_MAX} characters long.")


def _validate_template(template: object) -> dict[str, Any]:
    if not isinstance(template, dict):
        raise _required("template")
    if not isinstance(template.get("name"), str) or not template["name"]:
        raise _required("template.name")
    language = template.get("language")
    if not isinstance(language, dict) or not isinstance(language.get("code"), str):
        raise _required("template.language")
    components = template.get("components", [])
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise _invalid("Param template['components'] must be an array of objects.")
    for component in components:
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list):
            raise _invalid("Param template['components'][0]['parameters'] must be an array.")
        for parameter in parameters:
            if not isinstance(parameter, dict) or parameter.get("type") != "text":
                continue
            text = parameter.get("text")
            if not isinstance(text, str) or not text:
                raise _invalid(
                    "Invalid parameter",
                    details="Parameter 'text' is mandatory for component parameter type 'text'",
                )
            if _PARAM_WHITESPACE.search(text):
                raise _invalid(
                    "Invalid parameter",
                    details="Param text cannot have new-line/tab characters or more than 4 "
                    "consecutive spaces",
                )
    return template


def _body_params(template: dict[str, Any]) -> int:
    return sum(
        len(component.get("parameters", []))
        for component in template.get("components", [])
        if component.get("type") == "body"
    )


