"""The call records page's filter, read from a query string: pure, so every refusal names
its field (a clear 400, never a 500) and a property test can throw anything at it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

KINDS = ("out", "in", "p2p", "callback_local", "callback_remote")
MAX_DAYS = 366
"""The longest date range one page or one export covers."""
DEFAULT_DAYS = 7
_NUMBER = re.compile(r"^\+?[0-9]{1,32}$")
_REASON = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CURSOR = re.compile(r"^([0-9]{1,12}(?:\.[0-9]{1,9})?)~(.{1,200})$")


class FilterError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class CdrFilter:
    first: dt.date
    last: dt.date
    """Calls started from ``first`` to ``last`` inclusive (dates of ``billing.timezone``)."""
    account: str = ""
    number: str = ""
    """Matches the caller, the callee or the caller id shown to the carrier."""
    kind: str = ""
    end_reason: str = ""
    before: tuple[float, str] | None = None
    """The page starts after this record (start, id), newest first: the previous page's last."""

    def query(self, **changes: str) -> str:
        """This filter as a query string (without the page cursor), with ``changes``."""
        params = {
            "from": self.first.isoformat(), "to": self.last.isoformat(),
            "account": self.account, "number": self.number, "kind": self.kind,
            "end_reason": self.end_reason,
        }  # fmt: skip
        params |= changes
        return urlencode({k: v for k, v in params.items() if v})


def _date(params: Mapping[str, str], field: str, default: dt.date) -> dt.date:
    value = params.get(field, "").strip()
    if not value:
        return default
    try:
        return dt.date.fromisoformat(value) if len(value) == 10 else _bad_date(field)
    except ValueError:
        return _bad_date(field)


def _bad_date(field: str) -> dt.date:
    raise FilterError(field, "a date as YYYY-MM-DD")


def date_range(params: Mapping[str, str], today: dt.date) -> tuple[dt.date, dt.date]:
    """``from`` and ``to`` (the last ``DEFAULT_DAYS`` days by default, ``MAX_DAYS`` at most)."""
    last = _date(params, "to", today)
    first = _date(params, "from", last - dt.timedelta(days=DEFAULT_DAYS - 1))
    if last < first:
        if params.get("to", "").strip():
            raise FilterError("to", "before from")
        raise FilterError("from", "after today")
    if (last - first).days >= MAX_DAYS:
        raise FilterError("from", f"at most {MAX_DAYS} days")
    return first, last


def number(params: Mapping[str, str], field: str) -> str:
    """A phone number or account (empty: any)."""
    value = params.get(field, "").strip()
    if value and not _NUMBER.match(value):
        raise FilterError(field, "digits, with an optional leading +")
    return value


def cursor(params: Mapping[str, str]) -> tuple[float, str] | None:
    """Where a page starts: after the previous page's last row (its time and id)."""
    value = params.get("before", "")
    if not value:
        return None
    found = _CURSOR.match(value)
    if found is None:
        raise FilterError("before", "not a page of this list")
    return float(found.group(1)), found.group(2)


def parse_filter(params: Mapping[str, str], today: dt.date) -> CdrFilter:
    """The filter of a query string; ``FilterError`` naming the first bad field."""
    first, last = date_range(params, today)
    account, number_ = number(params, "account"), number(params, "number")
    kind = params.get("kind", "").strip()
    if kind and kind not in KINDS:
        raise FilterError("kind", "one of " + ", ".join(KINDS))
    reason = params.get("end_reason", "").strip()
    if reason and not _REASON.match(reason):
        raise FilterError("end_reason", "letters, digits and _ . : - (64 at most)")
    return CdrFilter(first, last, account, number_, kind, reason, cursor(params))
