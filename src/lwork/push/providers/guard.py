"""One place for retries, backoff, the in-flight cap, the per-attempt timeout and counters.

`GuardedProvider` wraps any `PushProvider`. Each attempt first takes a slot from a per-provider
semaphore (`max_in_flight`); when none is free it waits in a bounded queue (`max_queued`), and
a send that finds the queue full is rejected at once and counted, so one slow provider cannot
pile up unbounded work (the reason Sygnal's ConcurrencyLimitedPushkin exists). The slot is held
only while the request is in flight, not while backing off between attempts.

Temporary failures are retried with capped exponential backoff; a server's Retry-After is
honoured, and a Retry-After longer than `max_retry_after_s` ends the retries instead (a call
push that arrives minutes late is worse than none). Time is injected: `sleep` is a parameter so
tests never wait.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lwork.push.providers.base import (
    PermanentPushError,
    PushMessage,
    PushProvider,
    PushResult,
    PushTarget,
    PushTimeoutError,
    TemporaryPushError,
)

SleepFunction = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one push."""

    max_attempts: int = 4
    """Attempts in total, the first included."""
    base_delay_s: float = 0.5
    """Backoff before the first retry; doubles for each further retry."""
    max_delay_s: float = 8.0
    """Cap on the computed backoff."""
    max_retry_after_s: float = 60.0
    """A server asking to wait longer than this ends the retries."""
    attempt_timeout_s: float = 20.0
    """Hard bound on one attempt (token exchange included), on top of the HTTP timeout."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0 or self.attempt_timeout_s <= 0:
            raise ValueError("delays must be >= 0 and attempt_timeout_s > 0")


def backoff_delay(
    policy: RetryPolicy, retry_number: int, retry_after: float | None
) -> float | None:
    """Seconds to wait before retry number `retry_number` (1 = first retry), or None to give up.

    Without a server hint: ``min(max_delay_s, base_delay_s * 2 ** (retry_number - 1))``.
    With one: the larger of the hint and that computed delay, unless the hint exceeds
    `max_retry_after_s`, in which case None.
    """
    computed = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** (retry_number - 1))
    if retry_after is None:
        return computed
    if retry_after > policy.max_retry_after_s:
        return None
    return max(retry_after, computed)


@dataclass(slots=True)
class PushCounters:
    """Per-provider counters (export them labelled with the provider name)."""

    attempts: int = 0
    delivered: int = 0
    rejected_tokens: int = 0
    temporary_errors: int = 0
    timeouts: int = 0
    retries: int = 0
    gave_up: int = 0
    permanent_failures: int = 0
    overload_rejected: int = 0


class _QueueFull(Exception):
    pass


class GuardedProvider:
    """A `PushProvider` with retries, backoff, an in-flight cap and counters around another."""

    def __init__(
        self,
        inner: PushProvider,
        *,
        policy: RetryPolicy | None = None,
        max_in_flight: int = 100,
        max_queued: int = 1000,
        sleep: SleepFunction = asyncio.sleep,
    ) -> None:
        if max_in_flight < 1 or max_queued < 0:
            raise ValueError("max_in_flight must be >= 1 and max_queued >= 0")
        self.name = inner.name
        self.counters = PushCounters()
        self._inner = inner
        self._policy = policy or RetryPolicy()
        self._max_queued = max_queued
        self._slots = asyncio.Semaphore(max_in_flight)
        self._waiting = 0
        self._sleep = sleep

    @property
    def waiting(self) -> int:
        """Sends currently queued for a slot."""
        return self._waiting

    async def send(self, message: PushMessage, target: PushTarget) -> PushResult:
        """Deliver with retries; always returns a result for classified failures."""
        last_error = "no attempt made"
        attempt = 0
        while attempt < self._policy.max_attempts:
            attempt += 1
            try:
                result = await self._attempt(message, target)
            except _QueueFull:
                self.counters.overload_rejected += 1
                return PushResult(delivered=False, attempts=attempt - 1, failure="overloaded")
            except TemporaryPushError as exc:
                self.counters.temporary_errors += 1
                if isinstance(exc, PushTimeoutError):
                    self.counters.timeouts += 1
                last_error = exc.reason
                if attempt >= self._policy.max_attempts:
                    break
                delay = backoff_delay(self._policy, attempt, exc.retry_after)
                if delay is None:
                    last_error = f"{exc.reason} (retry-after {exc.retry_after}s too long)"
                    break
                self.counters.retries += 1
                await self._sleep(delay)
                continue
            except PermanentPushError as exc:
                self.counters.permanent_failures += 1
                return PushResult(delivered=False, attempts=attempt, failure=exc.reason)
            if result.delivered:
                self.counters.delivered += 1
            self.counters.rejected_tokens += len(result.rejected_tokens)
            return dataclasses.replace(result, attempts=attempt)
        self.counters.gave_up += 1
        return PushResult(delivered=False, attempts=attempt, failure=f"temporary: {last_error}")

    async def _attempt(self, message: PushMessage, target: PushTarget) -> PushResult:
        if self._slots.locked():
            if self._waiting >= self._max_queued:
                raise _QueueFull
            self._waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()
        try:
            self.counters.attempts += 1
            async with asyncio.timeout(self._policy.attempt_timeout_s):
                return await self._inner.send(message, target)
        except TimeoutError:
            raise PushTimeoutError("attempt timed out") from None
        finally:
            self._slots.release()
