"""The accepting checks after body and template: consent, window, tier."""

from __future__ import annotations

import dataclasses

import pytest

from lawhub_actors.core.accept import SendFacts, SendRefused, decide
from lawhub_actors.core.consent import ConsentState

NOW = 1_767_000_000.0
HOUR = 3600.0
INSIDE = NOW - 2 * HOUR
OUTSIDE = NOW - 25 * HOUR

BASE = SendFacts(ConsentState.GRANTED, INSIDE, is_template=False, tier_limit=250,
                 tier_users=0, recipient_counted=False, now=NOW)


def facts(**changes) -> SendFacts:
    return dataclasses.replace(BASE, **changes)


@pytest.mark.parametrize(("changes", "code"), [
    ({"consent": ConsentState.OPTED_OUT}, "opted_out"),
    ({"consent": ConsentState.OPTED_OUT, "last_inbound_at": OUTSIDE, "is_template": True},
     "opted_out"),
    ({"consent": ConsentState.UNKNOWN, "last_inbound_at": OUTSIDE, "is_template": True},
     "no_consent"),
    ({"consent": ConsentState.UNKNOWN, "last_inbound_at": None, "is_template": True},
     "no_consent"),
    ({"last_inbound_at": OUTSIDE}, "outside_window"),
    ({"last_inbound_at": None}, "outside_window"),
    ({"last_inbound_at": OUTSIDE, "is_template": True, "tier_users": 250}, "tier_limit"),
])
def test_each_refusal_has_its_code(changes, code) -> None:
    with pytest.raises(SendRefused) as refused:
        decide(facts(**changes))
    assert refused.value.code == code


def test_a_reply_inside_the_window_needs_no_consent_on_record_and_does_not_count() -> None:
    assert decide(facts(consent=ConsentState.UNKNOWN)) is False
    assert decide(facts(is_template=True, tier_users=10_000)) is False


def test_a_template_outside_the_window_is_business_initiated() -> None:
    assert decide(facts(last_inbound_at=OUTSIDE, is_template=True)) is True


def test_a_user_already_counted_in_the_tier_does_not_count_again() -> None:
    assert decide(facts(last_inbound_at=OUTSIDE, is_template=True, tier_users=250,
                        recipient_counted=True)) is True


def test_an_unlimited_tier_never_refuses() -> None:
    assert decide(facts(last_inbound_at=OUTSIDE, is_template=True, tier_limit=None,
                        tier_users=10**9)) is True
