"""A token bucket with time passed in, for the packet path's guards (a phone's packet rate,
strays on a latched port). Pure and compiled: one per leg or port, checked per datagram, so
not the keyed `lwork.ratelimit` (a dict lookup and a string key per packet)."""

from __future__ import annotations


class TokenBucket:
    """`rate` tokens a second, at most one second's worth saved."""

    __slots__ = ("rate", "tokens", "at")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.at = now

    def refill(self, now: float) -> float:
        # Arrival stamps of one drain may be out of order across sockets: never run backwards.
        elapsed = now - self.at
        if elapsed > 0.0:
            self.tokens = min(self.rate, self.tokens + elapsed * self.rate)
            self.at = now
        return self.tokens

    def take(self, now: float) -> bool:
        """One token if there is one: False leaves the bucket as it was."""
        if self.refill(now) < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def spend(self, count: int, now: float) -> bool:
        """`count` tokens already used (datagrams read): False when that overdrew the bucket,
        which then starts empty."""
        if self.refill(now) < count:
            self.tokens = 0.0
            return False
        self.tokens -= count
        return True
