"""May this outbound message be accepted? (pure)

The checks after the request body and the template, in the order the
contract gives them, each refusal with its code:

1. ``opted_out`` — the customer opted out (STOP, BERHENTI, UNSUBSCRIBE, or
   Meta's ``user_preferences: stop``): nothing goes to them, not even a
   reply inside the window.
2. ``no_consent`` — a business-initiated message (anything outside the
   24-hour window) needs consent on record. Inside the window the customer
   wrote to us first, so a reply needs no more than that.
3. ``outside_window`` — freeform text only inside the window opened by the
   customer's last message; outside it only a template.
4. ``tier_limit`` — a template outside the window opens a business-initiated
   conversation and counts one unique user in the number's moving 24-hour
   messaging limit (250 / 2K / 10K / 100K / unlimited); a user already
   counted in those 24 hours does not count again.

Time is an argument; the store gathers the facts inside the transaction
that then records the message, so two concurrent requests cannot both take
the last place of a tier.
"""

from __future__ import annotations

from dataclasses import dataclass

from lawhub_actors.core import window
from lawhub_actors.core.consent import ConsentState

TIER_WINDOW_S = 24 * 60 * 60


class SendRefused(Exception):
    """A send the rules do not allow; ``code`` is the contract's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class SendFacts:
    consent: ConsentState
    last_inbound_at: float | None
    is_template: bool
    tier_limit: int | None
    """Unique users per moving 24 h for the phone number; None: unlimited."""
    tier_users: int
    """Unique users business-initiated messages reached in the last 24 h."""
    recipient_counted: bool
    """Whether this recipient is already one of those users."""
    now: float


def decide(facts: SendFacts) -> bool:
    """Whether the send is business-initiated (it counts for the tier);
    raises :class:`SendRefused` when it may not be sent."""
    if facts.consent is ConsentState.OPTED_OUT:
        raise SendRefused("opted_out", "the customer opted out of messages")
    in_window = window.allows_freeform(facts.last_inbound_at, facts.now)
    if not in_window and facts.consent is not ConsentState.GRANTED:
        raise SendRefused("no_consent", "no consent on record for a business-initiated message")
    if not in_window and not facts.is_template:
        raise SendRefused(
            "outside_window",
            "freeform text only within 24 hours of the customer's last message; use a template",
        )
    business_initiated = not in_window
    if (
        business_initiated
        and facts.tier_limit is not None
        and not facts.recipient_counted
        and facts.tier_users >= facts.tier_limit
    ):
        raise SendRefused(
            "tier_limit",
            f"the number reached its tier of {facts.tier_limit} unique users in 24 hours",
        )
    return business_initiated
