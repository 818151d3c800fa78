"""Admission control and counters of the SIP trunk: pure, with time passed in as ``now``."""

import math
from dataclasses import dataclass


class TrunkBusy(Exception):
    """dial() refused at once: the calls-per-second or the concurrent-call limit is reached."""

    def __init__(self, limit: str) -> None:
        super().__init__(f"trunk busy: {limit} limit reached")
        self.limit = limit


class TokenBucket:
    """Calls-per-second limiter: ``rate`` tokens a second, at most ``burst`` saved up.

    Starts full, so a fresh trunk may place ``burst`` calls back to back.
    """

    def __init__(self, rate: float, burst: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1, math.ceil(rate))
        self._tokens = float(self.burst)
        self._updated: float | None = None

    def tokens(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def try_take(self, now: float) -> bool:
        """Take one token if there is one; False means "over the limit right now"."""
        self._refill(now)
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _refill(self, now: float) -> None:
        if self._updated is not None and now > self._updated:
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        if self._updated is None or now > self._updated:
            self._updated = now  # a clock that steps back never mints tokens


@dataclass(slots=True)
class TrunkStats:
    """What the trunk saw; ``malformed`` includes what the transport dropped unparsed."""

    calls_out: int = 0
    calls_in: int = 0
    busy_refused: int = 0
    untrusted_rejected: int = 0
    malformed: int = 0
    unmatched: int = 0
    handler_errors: int = 0
    registrations: int = 0
    registration_failures: int = 0
    keepalive_failures: int = 0
    active_calls: int = 0
    registered: bool = False
