"""The console's change forms, read into typed values: pure, so every refusal names its field
(a clear 400 on the page, never a 500) and a property test can throw anything at them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lwork.admin.cdr_filter import FilterError
from lwork.appversions import KINDS as VERSION_KINDS

FormError = FilterError
"""A field of a form that is not valid: ``field`` and what it must be."""

MAX_COINS = 1_000_000
MAX_MINUTES = 10_000_000
MAX_REFUND_YUAN = 10_000_000
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")
_REF = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_PAYID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_VERSION_NO = re.compile(r"^[A-Za-z0-9_.+-]{0,64}$")
_URL = re.compile(r"^https?://[^\s\x00-\x1f\x7f]{1,500}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def text(form: Mapping[str, str], field: str, limit: int, required: bool = False) -> str:
    """A free text field: trimmed, at most ``limit`` characters, no control characters
    (it ends up in the audit trail a terminal prints)."""
    value = form.get(field, "").strip()
    if required and not value:
        raise FormError(field, "required")
    if len(value) > limit:
        raise FormError(field, f"at most {limit} characters")
    if _CONTROL.search(value):
        raise FormError(field, "no control characters")
    return value


def phone(form: Mapping[str, str], field: str = "phone") -> str:
    value = form.get(field, "").strip()
    if not _PHONE.match(value):
        raise FormError(field, "a phone number (5 to 20 digits, + first at most)")
    return value


def amount(value: str, field: str, limit: int, places: int) -> int:
    """A non-negative decimal with at most ``places`` decimals, up to ``limit``, in hundredths
    when ``places`` is 2 (coins to cents, yuan to fen), whole otherwise; empty is 0."""
    raw = value.strip()
    if not raw:
        return 0
    if len(raw) > 20:
        raise FormError(field, "a number")
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise FormError(field, "a number") from None
    if not number.is_finite() or number < 0 or number > limit:
        raise FormError(field, f"from 0 to {limit}")
    scaled = number * (10**places)
    if scaled != scaled.to_integral_value():
        raise FormError(field, f"at most {places} decimals" if places else "a whole number")
    return int(scaled)


@dataclass(frozen=True, slots=True)
class Credit:
    coins_cents: int
    minutes: int
    ref: str
    note: str


def credit(form: Mapping[str, str]) -> Credit:
    """Coins and/or minutes given once per ``ref`` (the operator's own reference). Coins are
    kept in cents (``billing.rating.COIN``): two decimals at most."""
    coins = amount(form.get("coins", ""), "coins", MAX_COINS, 2)
    minutes = amount(form.get("minutes", ""), "minutes", MAX_MINUTES, 0)
    if coins == 0 and minutes == 0:
        raise FormError("coins", "coins or minutes, more than 0")
    ref = form.get("ref", "").strip()
    if not _REF.match(ref):
        raise FormError("ref", "1 to 64 letters, digits or _ . : -")
    return Credit(coins, minutes, ref, text(form, "note", 200))


@dataclass(frozen=True, slots=True)
class Refund:
    payid: str
    money_fen: int | None
    """None: the whole price."""
    reason: str


def refund(form: Mapping[str, str]) -> Refund:
    payid = form.get("payid", "").strip()
    if not _PAYID.match(payid):
        raise FormError("payid", "an order number")
    fen = amount(form.get("money", ""), "money", MAX_REFUND_YUAN, 2)
    return Refund(payid, fen or None, text(form, "reason", 200, required=True))


@dataclass(frozen=True, slots=True)
class Versions:
    kind: str
    version_no: str
    version_path: str
    version_info: str
    i_version_no: str
    i_version_path: str
    i_version_info: str


def versions(form: Mapping[str, str]) -> Versions:
    """One kind's versions (CONTRACT §7): numbers, download addresses (http or https), notes."""
    kind = form.get("kind", "")
    if kind not in VERSION_KINDS:
        raise FormError("kind", "one of " + ", ".join(VERSION_KINDS))
    values: dict[str, str] = {}
    for prefix in ("", "i_"):
        number = form.get(f"{prefix}version_no", "").strip()
        if not _VERSION_NO.match(number):
            raise FormError(f"{prefix}version_no", "up to 64 letters, digits or . _ + -")
        path = form.get(f"{prefix}version_path", "").strip()
        if path and not _URL.match(path):
            raise FormError(f"{prefix}version_path", "an http:// or https:// address")
        values[f"{prefix}version_no"] = number
        values[f"{prefix}version_path"] = path
        # Release notes may run over lines: only the other control characters are refused.
        values[f"{prefix}version_info"] = text(form, f"{prefix}version_info", 2000)
    return Versions(kind=kind, **values)
