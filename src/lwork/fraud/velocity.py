"""Velocity counting, pure: events per key within a sliding window (time passed in).

Memory stays bounded by the traffic of one window: a key's old events are dropped whenever it
is counted, and keys that went quiet are swept out every ``SWEEP_EVERY`` events.
"""

from __future__ import annotations

from collections import deque

SWEEP_EVERY = 1024


class WindowCounter:
    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._events: dict[str, deque[float]] = {}
        self._since_sweep = 0

    def add(self, key: str, now: float) -> int:
        """Count an event of ``key`` at ``now``; how many it had within the window, this one
        included."""
        events = self._events.setdefault(key, deque())
        self._expire(events, now)
        events.append(now)
        self._since_sweep += 1
        if self._since_sweep >= SWEEP_EVERY:
            self.sweep(now)
        return len(events)

    def count(self, key: str, now: float) -> int:
        events = self._events.get(key)
        if events is None:
            return 0
        self._expire(events, now)
        return len(events)

    def reset(self, key: str) -> None:
        """Forget ``key``'s events: a block replaces them, and counting starts afresh after."""
        self._events.pop(key, None)

    def sweep(self, now: float) -> None:
        self._since_sweep = 0
        for key in list(self._events):
            events = self._events[key]
            self._expire(events, now)
            if not events:
                del self._events[key]

    def __len__(self) -> int:
        """Keys held (for tests of the memory bound)."""
        return len(self._events)

    def _expire(self, events: deque[float], now: float) -> None:
        horizon = now - self.window_s
        while events and events[0] <= horizon:
            events.popleft()
