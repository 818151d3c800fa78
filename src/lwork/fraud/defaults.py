"""The limits a group gets when its settings leave them at None, by ``env``; pure.

Production defaults are written for a mainland-China operator (README, "Toll fraud"):

* international: ``+`` is denied and ``+86`` allowed, so every other country code, Hong Kong
  (+852), Macau (+853), Taiwan (+886) and the satellite and international networks (+870,
  +881, +882, +883) are refused unless the operator allows them;
* inside +86, ranges that charge the caller an information fee or hide a further destination:
  ``+861259`` (125 90–99, voice value-added and information services), ``+86160`` and
  ``+86168`` (the 160/168 voice information services, "声讯台"), ``+86950`` and ``+8696``
  (service numbers that MIIT warned in 2008 were used for ring-once call-back scams with
  information fees), ``+86179`` (179xx IP long-distance carrier codes, which dial onwards to
  any number, international included);
* SMS codes go to mainland mobiles only (``+8613`` … ``+8619``), never to 179xx.

Development allows every destination and caps nothing, so that demos and tests dial freely;
lists and limits that are configured apply in every ``env``.
"""

from __future__ import annotations

from typing import TypeVar

from lwork.fraud.limits import Limits
from lwork.fraud.prefixes import PrefixRules
from lwork.settings.fraud import FraudGroupSettings, FraudSettings

CALL_ALLOW = ("+86",)
CALL_DENY = ("+", "+861259", "+86160", "+86168", "+86950", "+8696", "+86179")
SMS_ALLOW = tuple(f"+861{d}" for d in range(3, 10))
SMS_DENY = ("+", "+86179")
COIN = 100
"""Cents per coin (as billing.rating)."""

_PRODUCTION_CAP = {False: 300 * COIN, True: 600}
"""A day's spending: 300 coins (100 minutes at 3 coins), or 600 package minutes."""
_PRODUCTION_SPEND_RATE = {False: 60 * COIN, True: 20}
"""Per minute: 20 calls' worth in parallel at 3 coins a minute, or 20 package minutes."""
PRODUCTION_CALLS_PER_MINUTE = 10
PRODUCTION_PREFIX_CALLS_PER_MINUTE = 30


T = TypeVar("T")


def _pick(value: T | None, in_production: T, in_development: T, production: bool) -> T:
    if value is not None:
        return value
    return in_production if production else in_development


def group_limits(section: FraudGroupSettings, production: bool, pays_minutes: bool) -> Limits:
    """The limits of a group, in its own unit (cents of a coin, or package minutes)."""

    unit = 1 if pays_minutes else COIN
    cap = section.daily_cap
    rate = section.spend_per_minute
    return Limits(
        calls=PrefixRules(
            tuple(_pick(section.allow_prefixes, list(CALL_ALLOW), [], production)),
            tuple(_pick(section.deny_prefixes, list(CALL_DENY), [], production)),
        ),
        sms=PrefixRules(
            tuple(_pick(section.sms_allow_prefixes, list(SMS_ALLOW), [], production)),
            tuple(_pick(section.sms_deny_prefixes, list(SMS_DENY), [], production)),
        ),
        daily_cap=_pick(
            None if cap is None else round(cap * unit), _PRODUCTION_CAP[pays_minutes], 0, production
        ),
        calls_per_minute=_pick(
            section.calls_per_minute, PRODUCTION_CALLS_PER_MINUTE, 0, production
        ),
        spend_per_minute=_pick(
            None if rate is None else round(rate * unit),
            _PRODUCTION_SPEND_RATE[pays_minutes],
            0,
            production,
        ),
    )


def prefix_calls_per_minute(section: FraudSettings, production: bool) -> int:
    if section.prefix_calls_per_minute is not None:
        return section.prefix_calls_per_minute
    return PRODUCTION_PREFIX_CALLS_PER_MINUTE if production else 0
