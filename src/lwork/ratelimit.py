"""Rate limits, pure: the caller passes ``now``.

A sliding-window counter per key (two fixed windows weighted by overlap, as in Cloudflare's and
nginx's approximations): O(1) memory per key, no timestamp lists that a flood could inflate.

``SharedRateLimiter`` holds one limit over several processes (``http.workers``): each counts
what it admits, reports those counts every exchange period (``lwork.http.shared_limits``) and
adds the others' reports as they arrive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

QUOTA_WAIT_S = 0.1
"""What a refusal for a spent share asks to wait: about one exchange period, after which the
other processes' counts are known and the shares are cut anew."""


@dataclass(slots=True)
class _Window:
    start: float
    current: int
    previous: int
    unsent: int = 0
    """Of ``current``, what this process admitted and has not reported yet (shared limits)."""


class RateLimiter:
    """At most ``limit`` events per ``period`` seconds per key."""

    def __init__(self, limit: int, period: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.period = period
        self._max_keys = max_keys
        self._windows: dict[str, _Window] = {}

    def hit(self, key: str, now: float) -> float:
        """Count one event for ``key``; return 0 if allowed, else seconds until it would be."""
        wait = self.check(key, now)
        if not wait:
            window = self._roll(key, now, create=True)
            assert window is not None
            window.current += 1
        return wait

    def check(self, key: str, now: float) -> float:
        """Like ``hit`` but without counting: would one more event be refused?"""
        window = self._roll(key, now, create=False)
        if window is None:
            return 0.0
        start = window.start
        estimate = window.previous * (1.0 - (now - start) / self.period) + window.current
        if estimate + 1 > self.limit:
            return self._retry_after(window, now, start)
        return 0.0

    def _roll(self, key: str, now: float, create: bool) -> _Window | None:
        window = self._windows.get(key)
        start = now - (now % self.period)
        if window is None:
            if not create:
                return None
            if len(self._windows) >= self._max_keys:
                self._evict(start)
            window = self._windows[key] = _Window(start, 0, 0)
        elif window.start != start:
            if window.unsent:
                self._unsent_of_past_window(key, window)
            elapsed = int((start - window.start) // self.period)
            window.previous = window.current if elapsed == 1 else 0
            window.current = 0
            window.start = start
        return window

    def _retry_after(self, window: _Window, now: float, start: float) -> float:
        if window.current + 1 > self.limit:
            return start + self.period - now
        # The previous window's share decays linearly; wait until enough of it has.
        excess = window.previous * (1.0 - (now - start) / self.period) + window.current + 1
        excess -= self.limit
        return max(0.01, excess / max(window.previous, 1) * self.period)

    def _evict(self, current_start: float) -> None:
        stale = [k for k, w in self._windows.items() if w.start < current_start - self.period]
        for key in stale:
            del self._windows[key]
        if len(self._windows) >= self._max_keys:
            # Still full of live keys: forget the oldest half rather than grow without bound.
            for key in list(self._windows)[: self._max_keys // 2]:
                del self._windows[key]

    def _unsent_of_past_window(self, key: str, window: _Window) -> None:
        """``window`` is about to roll over while holding counts not reported yet."""


Report = tuple[int, str, int]
"""(window number, key, events admitted): what one process tells the others."""


class SharedRateLimiter(RateLimiter):
    """At most ``limit`` events per ``period`` per key over ``peers`` processes, give or take
    what the reports' delay lets through.

    The counts of every process are summed into each key's windows: this process's at once,
    the others' when they report (``absorb``). Reports come every exchange period, so the
    others' newest admissions are unknown for up to a period (more when a report is late). To
    bound what they add meanwhile, a process admits in one of its periods at most
    ``remaining / peers²`` (rounded up), ``remaining`` being what is left of the limit as far as
    it knows, its own admissions of the period aside: all the others together then admit unseen
    about ``remaining / peers`` at most, a share that shrinks as the limit fills up.

    What an attack spread over the processes gets through (a simulation over random timings,
    ``tests/unit/test_shared_ratelimit.py``): with two processes, at most the limit + 2 when
    reports arrive within milliseconds (the hub is a local socket), limit × 1.15 + 4 when
    every report arrives a whole period late; with four, at most limit × 1.02 + 7 — against
    ``peers`` × the limit for processes counting alone. A client that one process serves alone
    still gets the whole limit: a burst gets nine tenths of it within 8 periods with two
    processes (0.8 s), 36 with four, and meanwhile a 429 asking to wait ``QUOTA_WAIT_S``.
    """

    def __init__(self, limit: int, period: float, peers: int, max_keys: int = 100_000) -> None:
        super().__init__(limit, period, max_keys)
        self.peers = peers
        self._divisor = peers * peers
        self._touched: set[str] = set()
        self._late: list[Report] = []

    def hit(self, key: str, now: float) -> float:
        window = self._roll(key, now, create=True)
        assert window is not None
        wait = self._refusal(window, now)
        if not wait:
            window.current += 1
            window.unsent += 1
            self._touched.add(key)
        return wait

    def check(self, key: str, now: float) -> float:
        window = self._roll(key, now, create=False)
        return 0.0 if window is None else self._refusal(window, now)

    def _refusal(self, window: _Window, now: float) -> float:
        start = window.start
        estimate = window.previous * (1.0 - (now - start) / self.period) + window.current
        if estimate + 1 > self.limit:
            return self._retry_after(window, now, start)
        # What remained of the limit before this period's own admissions; the others may be
        # admitting their shares of it right now.
        share = math.ceil((self.limit - (estimate - window.unsent)) / self._divisor)
        if window.unsent + 1 > share:
            return QUOTA_WAIT_S
        return 0.0

    def report(self) -> list[Report]:
        """What this process admitted since the last report; the shares start anew."""
        out, self._late = self._late, []
        for key in self._touched:
            window = self._windows.get(key)
            if window is not None and window.unsent:
                out.append((self._number(window.start), key, window.unsent))
                window.unsent = 0
        self._touched.clear()
        return out

    def absorb(self, number: int, key: str, count: int, now: float) -> None:
        """Another process admitted ``count`` events for ``key`` in window ``number``."""
        window = self._roll(key, now, create=True)
        assert window is not None
        current = self._number(window.start)
        if number == current:
            window.current += count
        elif number == current - 1:
            window.previous += count
        # Older: no longer counts. Newer cannot happen on one machine (one monotonic clock).

    def _number(self, start: float) -> int:
        return round(start / self.period)

    def _unsent_of_past_window(self, key: str, window: _Window) -> None:
        self._late.append((self._number(window.start), key, window.unsent))
        window.unsent = 0
