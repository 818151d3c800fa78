"""Telling a storage outage from a bug, and logging outages without a traceback per request.

While PostgreSQL is down, restarting or out of connections (or SQLite's disk is full), every
request that touches storage fails the same way and is answered ``service_not_available``. A
traceback for each of them buried a 100,000-poll node's log under 830 MB in ten minutes (issue
17's PostgreSQL push run): a log that can fill the disk the outage did not. An outage is logged
once when it starts, then summarised every ``SUMMARY_EVERY_S`` while requests keep failing.
"""

from __future__ import annotations

import errno
from collections import Counter

from sqlalchemy import exc as sa_exc

SUMMARY_EVERY_S = 10.0

# SQLite result codes (the low byte of an extended code) that say the file, not the statement,
# failed: busy, locked, out of memory, read-only, I/O error, full, cannot open.
_SQLITE_OUTAGES = {5, 6, 7, 8, 10, 13, 14}
# PostgreSQL SQLSTATE classes of the same kind: connection exception, insufficient resources
# (too many connections, disk full), operator intervention (shutdown, starting up), system error.
_POSTGRES_OUTAGES = {"08", "53", "57", "58"}
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EIO}


def outage_of(exc: BaseException) -> str | None:
    """One line naming the outage ``exc`` reports, or None when it is not one: a bug (a
    statement or a constraint at fault), logged with its traceback."""
    if isinstance(exc, sa_exc.TimeoutError):
        return "no free database connection within the pool's timeout"
    if isinstance(exc, sa_exc.DBAPIError):
        # The asyncpg adapter's error wraps asyncpg's own, which names the fault.
        driver = exc if exc.orig is None else exc.orig.__cause__ or exc.orig
        return _one_line(driver) if _database_down(exc) else None
    if isinstance(exc, ConnectionError) or (isinstance(exc, OSError) and exc.errno in _NO_ROOM):
        return _one_line(exc)
    return None


def _database_down(exc: sa_exc.DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_OUTAGES
    state = getattr(exc.orig, "sqlstate", None)
    if isinstance(state, str):
        return state[:2] in _POSTGRES_OUTAGES
    # No code (the driver lost the connection itself): only the connection-level kinds.
    return exc.connection_invalidated or isinstance(
        exc, sa_exc.OperationalError | sa_exc.InterfaceError
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class OutageLog:
    """What to log of requests failed by an outage: the first at once, then at most one line
    per ``every_s`` counting the failures since the last line. Time is passed in."""

    def __init__(self, every_s: float = SUMMARY_EVERY_S) -> None:
        self._every_s = every_s
        self._logged_at: float | None = None
        self._since: Counter[str] = Counter()

    def failed(self, outage: str, now: float) -> str | None:
        """A request failed by ``outage`` at ``now``: the line to log, if one is due."""
        if self._logged_at is not None and now - self._logged_at < self._every_s:
            self._since[outage] += 1
            return None
        if self._logged_at is None or not self._since:
            line = f"storage unavailable, requests answer service_not_available: {outage}"
        else:
            kinds = "; ".join(f"{n} × {what}" for what, n in self._since.most_common(3))
            elapsed = now - self._logged_at
            line = (
                f"storage unavailable: {self._since.total() + 1} requests answered "
                f"service_not_available in the last {elapsed:.0f} s ({kinds}); now: {outage}"
            )
        self._logged_at = now
        self._since.clear()
        return line
