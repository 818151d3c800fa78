"""Phone number normalisation for lookups (CONTRACT §3); responses echo what the client sent."""

from __future__ import annotations

_KEEP = frozenset("0123456789*#")


def normalise_phone(raw: str) -> str:
    """Keep ``0-9*#``; ``0086`` prefixes become the domestic form.

    ``008610…`` → ``010…`` (Beijing landline), ``00861…`` → ``1…`` (mobile), ``0086X…`` → ``0X…``.
    """
    digits = "".join(ch for ch in raw if ch in _KEEP)
    if digits.startswith("0086"):
        rest = digits[4:]
        if rest.startswith("10"):
            return "0" + rest
        if rest.startswith("1"):
            return rest
        return "0" + rest
    return digits
