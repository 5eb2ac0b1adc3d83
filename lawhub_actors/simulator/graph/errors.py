"""Meta's Graph API error bodies: the envelope every error shares, the titles and details
of the WhatsApp error codes, and :class:`Refused`, how a send's checks end in an error.

The envelope is ``{"error": {"message", "type", "code", ["error_subcode"],
["error_data"], "fbtrace_id"}}`` (see :func:`graph_error`).
"""

from __future__ import annotations

import secrets as random_source
from typing import Any, Literal

from aiohttp import web

INVALID_OAUTH_MESSAGE = "Invalid OAuth access token - Cannot parse access token"
WWW_AUTHENTICATE = 'OAuth "Facebook Platform" "invalid_token" "Cannot parse access token"'
_UNSUPPORTED = (
    "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due "
    "to missing permissions, or does not support this operation. Please read the Graph API "
    "documentation at https://developers.facebook.com/docs/graph-api"
)
_UNKNOWN_CODE = ("Something went wrong", "Something went wrong")
# Meta's WhatsApp error titles and ``error_data.details`` for the codes a test may inject.
_WHATSAPP_ERRORS: dict[int, tuple[str, str]] = {
    1: ("An unknown error occurred", "An unknown error occurred"),
    2: ("Service temporarily unavailable", "Service temporarily unavailable"),
    4: ("Application request limit reached", "Too many API calls"),
    80007: ("Rate limit issues", "The WhatsApp Business Account has reached its rate limit"),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131000: ("Something went wrong", "Something went wrong"),
    131016: ("Service unavailable", "A service is temporarily unavailable"),
    131052: ("Media download error", "Unable to download the media sent by the user"),
    133004: ("Server temporarily unavailable", "The server is temporarily unavailable"),
    # sending
    0: ("AuthException", "We were unable to authenticate the app user"),
    3: ("API Method", "Capability or permissions issue"),
    10: ("Permission denied", "Permission is either not granted or has been removed"),
    190: ("Access token has expired", "The access token has expired"),
    200: ("API Permission", "Permission is either not granted or has been removed"),
    368: ("Temporarily blocked for policies violations",
          "The WhatsApp Business Account has been restricted for violating a platform policy"),
    130472: ("User's number is part of an experiment",
             "Failed to send message because this user's phone number is part of an experiment"),
    131005: ("Access denied", "Permission is either not granted or has been removed"),
    131008: ("Required parameter is missing", "A required parameter is missing"),
    131009: ("Parameter value is not valid", "One or more parameter values are invalid"),
    131021: ("Recipient cannot be sender", "Sender and recipient phone number is the same"),
    131026: ("Message undeliverable", "Message Undeliverable."),
    131031: ("Account has been locked", "Business Account locked"),
    131042: ("Business eligibility payment issue",
             "There was an error related to your payment method"),
    131045: ("Incorrect certificate", "Message failed to send due to a phone number "
             "registration error"),
    131047: ("Re-engagement message", "Message failed to send because more than 24 hours "
             "have passed since the customer last replied to this number."),
    131048: ("Spam rate limit hit", "Message failed to send because there are restrictions "
             "on how many messages can be sent from this phone number."),
    131049: ("This message was not delivered to maintain healthy ecosystem engagement.",
             "In order to maintain a healthy ecosystem engagement, the message failed to be "
             "delivered."),
    131050: ("Unable to deliver the message. This recipient has chosen to stop receiving "
             "marketing messages on WhatsApp from your business.",
             "The user has stopped marketing messages from this business."),
    131051: ("Unsupported message type", "Message type is not currently supported."),
    131053: ("Media upload error", "Unable to upload the media used in the message."),
    131056: ("(Business Account, Consumer Account) pair rate limit hit",
             "Message failed to send because there were too many messages sent from this "
             "phone number to the same phone number in a short period of time."),
    131057: ("Account in maintenance mode", "Business Account is in maintenance mode"),
    132000: ("Number of parameters does not match the expected number of params",
             "The number of variable parameter values does not match the template"),
    132001: ("Template name does not exist in the translation",
             "The template does not exist in the specified language or has not been approved"),
    132005: ("Translated text too long", "Translated text is too long."),
    132007: ("Template Format Character Policy Violated",
             "Template content violates a WhatsApp policy."),
    132012: ("Parameter format does not match format in the created template",
             "Variable parameter values formatted incorrectly."),
    132015: ("Template is Paused", "Template is paused due to low quality"),
    132016: ("Template is Disabled", "Template has been paused too many times due to low "
             "quality and is now permanently disabled."),
    132068: ("Flow is blocked", "Flow is in blocked state."),
    132069: ("Flow is throttled", "Flow is in throttled state"),
    133010: ("Phone number not registered", "Phone number not registered on the Whatsapp "
             "Business Platform."),
    135000: ("Generic user error", "Message failed to send because of an unknown error "
             "with your request parameters."),
}


def error_text(code: int) -> tuple[str, str]:
    """Meta's title and ``error_data.details`` for the WhatsApp error ``code``."""
    return _WHATSAPP_ERRORS.get(code, _UNKNOWN_CODE)


def default_code(status: int) -> int:
    """The code a scripted failure carries when none is given: 130429 ("Rate limit hit")
    for a 429, 131000 ("Something went wrong") otherwise."""
    return 130429 if status == 429 else 131000


def fbtrace_id() -> str:
    """An id shaped like Meta's ``fbtrace_id`` (opaque, url-safe)."""
    return "A" + random_source.token_urlsafe(16)


def graph_error(
    status: int,
    code: int,
    message: str,
    *,
    error_type: str = "OAuthException",
    subcode: int | None = None,
    details: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A Graph API error response: ``{"error": {message, type, code, …, fbtrace_id}}``."""
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = fbtrace_id()
    return web.json_response({"error": error}, status=status, headers=headers)


def whatsapp_error(status: int, code: int, *, details: str | None = None) -> web.Response:
    """Meta's body for a WhatsApp error code: ``(#code) Title`` plus ``error_data.details``
    (the code's own unless ``details`` is given)."""
    title, own_details = error_text(code)
    return graph_error(
        status, code, f"(#{code}) {title}",
        details=details if details is not None else own_details,
    )


def unknown_object(method: Literal["get", "post"], object_id: str) -> web.Response:
    """Meta's 400 for an id it does not know (code 100, subcode 33, GraphMethodException)."""
    return graph_error(
        400, 100, _UNSUPPORTED.format(method=method, id=object_id),
        error_type="GraphMethodException", subcode=33,
    )


class Refused(Exception):
    """A send answered with an error (raised inside the checks, turned into the response)."""

    def __init__(self, response: web.Response, code: int) -> None:
        super().__init__(code)
        self.response = response
        self.code = code

    @classmethod
    def whatsapp(cls, status: int, code: int, *, details: str | None = None) -> Refused:
        """Refused with Meta's body for ``code`` (see :func:`whatsapp_error`)."""
        return cls(whatsapp_error(status, code, details=details), code)
