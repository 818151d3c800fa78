"""Rate limits, pure: the caller passes ``now``.

A sliding-window counter per key (two fixed windows weighted by overlap, as in Cloudflare's and
nginx's approximations): O(1) memory per key, no timestamp lists that a flood could inflate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Window:
    start: float
    current: int
    previous: int


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
