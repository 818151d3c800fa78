"""Phone number normalisation for lookups (CONTRACT §3); responses echo what the client sent."""

from __future__ import annotations

import re

_DROP = re.compile(r"[^0-9*#]")


def normalise_phone(raw: str) -> str:
    """Keep ``0-9*#``; ``0086`` prefixes become the domestic form.

    ``008610…`` → ``010…`` (Beijing landline), ``00861…`` → ``1…`` (mobile), ``0086X…`` → ``0X…``.
    """
    # Most numbers arrive as plain ASCII digits: skip the filtering (query_status does 20 a call).
    digits = raw if raw.isascii() and raw.isdigit() else _DROP.sub("", raw)
    if digits.startswith("0086"):
        rest = digits[4:]
        if rest.startswith("10"):
            return "0" + rest
        if rest.startswith("1"):
            return rest
        return "0" + rest
    return digits
