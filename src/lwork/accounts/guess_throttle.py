"""Password guessing, slowed per account and address, pure: the caller passes ``now``.

A guess is judged by who makes it: the pair (account, client address) gets ``free_failures``
wrong passwords, then waits ``base_s``, ``2 x base_s``, … up to ``max_s`` before each next
one; a correct password clears the pair. So a stranger's failures never delay the owner at the
owner's own address, while one address guessing at one account slows down exponentially.

Many addresses guessing at one account are bounded by the account's hourly budget of failures,
which counts only addresses the account has not logged in from: the owner's addresses are never
refused by it, and an owner on a new network waits at most about ``3600 / budget`` seconds for
a free slot, not the whole hour.

An attempt is counted as a failure before the password is checked (and cleared if it was right),
so parallel guesses cannot all pass one check. Memory is bounded; the state lives in one node.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

_HOUR = 3_600.0


@dataclass(frozen=True)
class GuessPolicy:
    free_failures: int
    base_s: float
    max_s: float
    per_account_per_hour: int
    known_per_account: int = 8
    max_keys: int = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class _Pair:
    failures: int
    blocked_until: float
    seen: float


class GuessThrottle:
    """Failures keyed by (account, address key); the address key is an IPv4 address or an
    IPv6 /64 (``lwork.addresses.limit_key``)."""

    def __init__(self, policy: GuessPolicy) -> None:
        self._policy = policy
        self._pairs: OrderedDict[tuple[str, str], _Pair] = OrderedDict()
        self._known: OrderedDict[str, list[str]] = OrderedDict()
        # A token bucket per account: ``per_account_per_hour`` failures at once, then one
        # every 3600 / per_account_per_hour seconds, so a refusal is short, never a lockout.
        self._budgets: OrderedDict[str, _Bucket] = OrderedDict()
        self._refill_per_s = policy.per_account_per_hour / _HOUR

    def backoff(self, failures: int) -> float:
        """How long a pair waits after its ``failures``-th consecutive failure."""
        policy = self._policy
        over = failures - policy.free_failures
        if over < 0:
            return 0.0
        return min(policy.max_s, policy.base_s * 2.0 ** min(over, 64))

    def attempt(self, account: str, address: str, now: float) -> float:
        """0: go ahead (the attempt counts as a failure until ``succeeded``); else the seconds
        until this address may try this account again."""
        key = (account, address)
        pair = self._pairs.get(key)
        if pair is not None and now - pair.seen > self._policy.max_s + _HOUR:
            pair = None  # stale: its backoff has long run out
        if pair is not None and pair.blocked_until > now:
            return pair.blocked_until - now
        if address not in self._known.get(account, ()):
            if wait := self._spend_budget(account, now):
                return wait
        if pair is None:
            pair = self._pairs[key] = _Pair(0, 0.0, now)
            self._bound(self._pairs, self._policy.max_keys)
        self._pairs.move_to_end(key)
        pair.failures += 1
        pair.seen = now
        pair.blocked_until = now + self.backoff(pair.failures)
        return 0.0

    def succeeded(self, account: str, address: str, now: float) -> None:
        """The password was right: clear the pair and remember the address as the owner's."""
        self._pairs.pop((account, address), None)
        known = self._known.pop(account, [])
        if address in known:
            known.remove(address)
        elif (budget := self._budgets.get(account)) is not None:
            # Counted as a failure before the check; it was not one.
            budget.tokens = min(budget.tokens + 1.0, self._policy.per_account_per_hour)
        known.append(address)
        self._known[account] = known[-self._policy.known_per_account :]
        self._bound(self._known, self._policy.max_keys)

    def _spend_budget(self, account: str, now: float) -> float:
        capacity = float(self._policy.per_account_per_hour)
        budget = self._budgets.get(account)
        if budget is None:
            budget = self._budgets[account] = _Bucket(capacity, now)
            self._bound(self._budgets, self._policy.max_keys)
        self._budgets.move_to_end(account)
        budget.tokens = min(capacity, budget.tokens + (now - budget.updated) * self._refill_per_s)
        budget.updated = now
        if budget.tokens < 1.0:
            return (1.0 - budget.tokens) / self._refill_per_s
        budget.tokens -= 1.0
        return 0.0

    @staticmethod
    def _bound(table: OrderedDict[Any, Any], limit: int) -> None:
        # Least recently used first: a flood of new keys forgets the oldest, never grows.
        while len(table) > limit:
            table.popitem(last=False)
