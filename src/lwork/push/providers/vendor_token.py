"""An access token that a push vendor issues for a while (Huawei, Honor, OPPO, vivo): fetched
once, shared by concurrent sends, renewed shortly before it expires or as soon as the vendor
refuses it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lwork.push.providers.base import PermanentPushError, TemporaryPushError
from lwork.push.providers.httputil import TEMPORARY_STATUSES

#: Fetches a new token: its value and its lifetime in seconds.
Fetch = Callable[[], Awaitable[tuple[str, float]]]


@dataclass(frozen=True, slots=True)
class _Held:
    value: str
    renew_at: float


class VendorToken:
    def __init__(
        self, fetch: Fetch, *, margin_s: float = 120.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._fetch = fetch
        self._margin_s = margin_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._held: _Held | None = None
        self.fetches = 0

    async def value(self) -> str:
        async with self._lock:
            held = self._held
            if held is not None and self._clock() < held.renew_at:
                return held.value
            self.fetches += 1
            value, lifetime_s = await self._fetch()
            # A short-lived token is renewed halfway, not on every send.
            early = min(self._margin_s, lifetime_s / 2)
            self._held = _Held(value, self._clock() + lifetime_s - early)
            return value

    def invalidate(self, value: str) -> None:
        """The vendor refused ``value``: the next send fetches a new token."""
        if self._held is not None and self._held.value == value:
            self._held = None


def token_failure(vendor: str, status: int, detail: str) -> Exception:
    """The exception for a failed token request: a busy vendor is temporary, refused
    credentials are permanent (retrying cannot fix them)."""
    if status in TEMPORARY_STATUSES or status >= 500:
        return TemporaryPushError(f"{vendor} token endpoint HTTP {status}: {detail}")
    return PermanentPushError(f"{vendor} token endpoint HTTP {status}: {detail}")


def lifetime(value: object, default: float) -> float:
    """A token lifetime from the vendor's answer, kept within sane bounds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        seconds = float(value)
    except ValueError:
        return default
    return min(max(seconds, 1.0), 7 * 86400.0) if seconds == seconds else default
