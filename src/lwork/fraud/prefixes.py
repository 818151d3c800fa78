"""Destination prefixes, pure: E.164 forms of dialled numbers and allow/deny decisions.

Numbers are matched in E.164 form (``+8613800138000``), the form the trunk dials, so that
``0044…``, ``+44 …`` and a national number with the default country code all meet the same
rules. The longest matching prefix of either list decides, so an operator can deny ``+`` and
allow ``+86``, then deny ``+861259`` inside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lwork.sip.trunk.config import NumberRule, normalise_number

PREFIX = re.compile(r"^\+[0-9]{0,15}$")


def checked_prefix(prefix: str) -> str:
    """``prefix`` if it is ``+`` and up to 15 digits; ValueError otherwise."""
    if not PREFIX.match(prefix):
        raise ValueError(f"{prefix[:40]!r} is not an E.164 prefix such as '+86' or '+'")
    return prefix


@dataclass(frozen=True, slots=True)
class NumberPlan:
    """How dialled numbers become E.164: the trunk's rules and the home country code."""

    rules: tuple[NumberRule, ...] = (NumberRule("00", "+"),)
    country_code: str = "86"

    def e164(self, number: str) -> str | None:
        """The E.164 form of ``number``; None when it is not a telephone number."""
        try:
            return normalise_number(number, self.rules, self.country_code)
        except ValueError:
            return None

    def key(self, number: str) -> str:
        """What two spellings of one number have in common, for equality checks."""
        return self.e164(number) or number


@dataclass(frozen=True, slots=True)
class PrefixRules:
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def permits(self, e164: str | None) -> bool:
        """Whether a number (E.164, or None when it is none) may be reached.

        The longest matching prefix decides; a tie denies; no match allows. A number that is
        not E.164 is refused as soon as anything is denied: it could not be judged."""
        if e164 is None:
            return not self.deny
        allowed = _longest(self.allow, e164)
        denied = _longest(self.deny, e164)
        if denied < 0:
            return True
        return allowed > denied

    def denied_by(self, e164: str | None) -> str | None:
        """The deny prefix that refuses ``e164`` (for logs), or None if it is permitted."""
        if self.permits(e164):
            return None
        if e164 is None:
            return "(not a number)"
        return max((p for p in self.deny if e164.startswith(p)), key=len)

    def plus(self, allow: tuple[str, ...], deny: tuple[str, ...]) -> PrefixRules:
        """These rules with more prefixes (an account's own on top of its group's)."""
        return PrefixRules(self.allow + allow, self.deny + deny)


def _longest(prefixes: tuple[str, ...], number: str) -> int:
    return max((len(p) for p in prefixes if number.startswith(p)), default=-1)
