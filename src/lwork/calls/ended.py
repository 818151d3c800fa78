"""Calls that ended recently, so that ``p2p_poll`` answers ``release`` for a while after the
caller hung up instead of ``session_not_exist`` (CONTRACT §6.2). Pure: time is passed in.

Memory is bounded twice: by age (``memory_s``) and by count (``max_entries``, the oldest
forgotten first), so a burst of short calls cannot grow it beyond a known size.
"""

from __future__ import annotations

from collections import OrderedDict


class EndedCalls:
    def __init__(self, memory_s: float, max_entries: int = 100_000) -> None:
        self.memory_s = memory_s
        self.max_entries = max_entries
        self._ended: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._ended)

    def add(self, sid: str, now: float) -> None:
        if self.memory_s <= 0:
            return
        self._ended[sid] = now
        self._ended.move_to_end(sid)
        self.prune(now)

    def ended_recently(self, sid: str, now: float) -> bool:
        ended_at = self._ended.get(sid)
        return ended_at is not None and now - ended_at < self.memory_s

    def prune(self, now: float) -> None:
        """Forget what is older than ``memory_s``, and the oldest beyond ``max_entries``."""
        ended = self._ended
        while ended:
            sid, ended_at = next(iter(ended.items()))
            if now - ended_at < self.memory_s and len(ended) <= self.max_entries:
                return
            del ended[sid]
