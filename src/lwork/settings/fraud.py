"""Settings of the toll-fraud controls (``[fraud]``): destinations, daily spend caps, velocity.

Fields left at ``None`` take the default of ``env`` (``lwork.fraud.defaults``): production
denies international and premium-rate destinations and caps spending; development allows
everything, so that a test or a demo dials any number, while lists that are set still apply.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from lwork.settings.sections import Section

_PREFIX = re.compile(r"^\+[0-9]{0,15}$")


def _checked_prefixes(value: list[str] | None) -> list[str] | None:
    for prefix in value or ():
        if not _PREFIX.match(prefix):
            raise ValueError(f"{prefix!r} is not an E.164 prefix such as '+86' or '+'")
    return value


class FraudGroupSettings(Section):
    allow_prefixes: list[str] | None = None
    """Call destinations allowed, as E.164 prefixes (``"+86"``). The longest prefix of the
    allow and deny lists that matches a number decides (a tie denies; no match allows). None:
    production allows ``+86``; development nothing in particular (everything passes)."""
    deny_prefixes: list[str] | None = None
    """Call destinations refused (``invalid_phone``). None: production denies ``+`` (every
    country but the allowed ones) and mainland premium/information ranges (README, "Toll
    fraud"); development none."""
    sms_allow_prefixes: list[str] | None = None
    """Numbers SMS codes may be sent to, as for calls. None: production ``+861`` (mainland
    mobiles); development everything."""
    sms_deny_prefixes: list[str] | None = None
    """Numbers SMS codes are never sent to (``sms_failed``). None: production ``+``;
    development none."""
    daily_cap: float | None = Field(None, ge=0)
    """Most an account may spend per calendar day in ``billing.timezone``: coins for
    ``common``, package minutes for ``dth``. A call whose first minute would pass it is refused
    (``balance_not_enough``). 0: no cap. None: production 300 coins / 600 minutes; development
    no cap."""
    calls_per_minute: int | None = Field(None, ge=0)
    """Calls to phone numbers one account may start within 60 s (counted on each node); one
    more blocks the account's calls for ``fraud.block_s``. 0: off. None: production 10;
    development off."""
    spend_per_minute: float | None = Field(None, ge=0)
    """Spending rate (coins or minutes) of one account's calls over the last 60 s, from its
    call records, that blocks its calls for ``fraud.block_s``. 0: off. None: production 60
    coins / 20 minutes; development off."""

    _prefixes = field_validator(
        "allow_prefixes", "deny_prefixes", "sms_allow_prefixes", "sms_deny_prefixes"
    )(_checked_prefixes)


class FraudSettings(Section):
    common: FraudGroupSettings = FraudGroupSettings()
    """Limits of ``common`` accounts (self-registered, pay coins)."""
    dth: FraudGroupSettings = FraudGroupSettings()
    """Limits of ``dth`` accounts (provisioned, pay package minutes)."""
    country_code: str = Field("86", pattern=r"^[0-9]{1,3}$")
    """Country code of national numbers when ``sip.default_country_code`` is empty, so that
    destinations are always matched in E.164 form."""
    prefix_digits: int = Field(7, ge=1, le=15)
    """Digits of a destination (after ``+``) that make its range for the per-range velocity
    alarm (``+8613800…`` with 7: ``+8613800``)."""
    prefix_calls_per_minute: int | None = Field(None, ge=0)
    """Calls to one destination range within 60 s, all accounts together (counted on each
    node), beyond which that range is blocked for ``block_s``: the pattern of international
    revenue-share fraud. 0: off. None: production 30; development off."""
    block_s: float = Field(900.0, gt=0)
    """How long a velocity alarm blocks the account or the range (seconds)."""
