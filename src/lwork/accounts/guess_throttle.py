"""Password guessing, slowed per account and address, pure: the caller passes ``now`` and the
stored state, and stores what comes back (``guess_store`` does, in the database).

A guess is judged by who makes it: the pair (account, client address) gets ``free_failures``
wrong passwords, then waits ``base_s``, ``2 x base_s``, … up to ``max_s`` before each next
one; a correct password clears the pair. So a stranger's failures never delay the owner at the
owner's own address, while one address guessing at one account slows down exponentially.

Many addresses guessing at one account are bounded by the account's budget, a token bucket of
``per_account_per_hour`` failures refilled at that rate, which only addresses the account has
never logged in from spend: the owner's addresses are never refused by it, and anyone else
waits about ``3600 / per_account_per_hour`` seconds for the next slot, never the whole hour.

An attempt is counted as a failure before the password is checked (and cleared if it was right),
so parallel guesses cannot all pass one check.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR = 3_600.0


@dataclass(frozen=True)
class GuessPolicy:
    free_failures: int
    base_s: float
    max_s: float
    per_account_per_hour: int
    known_per_account: int = 8
    """Addresses remembered per account as the owner's (the most recent logins)."""

    @property
    def forget_after_s(self) -> float:
        """A stranger's pair idle this long has served its backoff and is forgotten."""
        return self.max_s + HOUR


@dataclass(frozen=True)
class Pair:
    """One (account, address): consecutive failures, until when it must wait, when it was last
    seen, and whether the account has logged in from it."""

    failures: int
    blocked_until: float
    seen: float
    known: bool


@dataclass(frozen=True)
class Budget:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Verdict:
    wait: float
    """0: go ahead; else the seconds until this address may try this account again."""
    pair: Pair | None
    """The pair to store (None: unchanged)."""
    budget: Budget


def backoff(policy: GuessPolicy, failures: int) -> float:
    """How long a pair waits after its ``failures``-th consecutive failure."""
    over = failures - policy.free_failures
    if over < 0:
        return 0.0
    return min(policy.max_s, policy.base_s * 2.0 ** min(over, 64))


def full_budget(policy: GuessPolicy, now: float) -> Budget:
    return Budget(float(policy.per_account_per_hour), now)


def _refilled(policy: GuessPolicy, budget: Budget, now: float) -> Budget:
    rate = policy.per_account_per_hour / HOUR
    gained = max(0.0, now - budget.updated) * rate
    return Budget(min(float(policy.per_account_per_hour), budget.tokens + gained), now)


def attempt(policy: GuessPolicy, pair: Pair | None, budget: Budget, now: float) -> Verdict:
    """May this address guess now? If so, the guess is counted as a failure already."""
    if pair is not None and not pair.known and now - pair.seen > policy.forget_after_s:
        pair = None
    if pair is not None and pair.blocked_until > now:
        return Verdict(pair.blocked_until - now, None, budget)
    known = pair is not None and pair.known
    if not known:  # only strangers spend the budget; the owner's addresses leave it as it is
        budget = _refilled(policy, budget, now)
        if budget.tokens < 1.0:
            rate = policy.per_account_per_hour / HOUR
            return Verdict((1.0 - budget.tokens) / rate, None, budget)
        budget = Budget(budget.tokens - 1.0, now)
    failures = (pair.failures if pair is not None else 0) + 1
    wait = backoff(policy, failures)
    return Verdict(0.0, Pair(failures, now + wait if wait else 0.0, now, known), budget)


def succeeded(
    policy: GuessPolicy, pair: Pair | None, budget: Budget, now: float
) -> tuple[Pair, Budget]:
    """The password was right: the pair starts over as one of the owner's addresses, and a
    stranger's slot the attempt took is given back (it was not a failure)."""
    if pair is None or not pair.known:
        budget = _refilled(policy, budget, now)
        budget = Budget(min(float(policy.per_account_per_hour), budget.tokens + 1.0), now)
    return Pair(0, 0.0, now, True), budget


def unchecked(policy: GuessPolicy, pair: Pair | None, budget: Budget) -> tuple[Pair | None, Budget]:
    """The attempt was counted but its password never checked (the server was too busy):
    take the failure back, and a stranger's budget slot with it."""
    if pair is None or pair.failures == 0:
        return pair, budget
    failures = pair.failures - 1
    # Keep a wait already earned by the failures before; drop the one this attempt added.
    blocked_until = pair.blocked_until if backoff(policy, failures) else 0.0
    if not pair.known:
        tokens = min(float(policy.per_account_per_hour), budget.tokens + 1.0)
        budget = Budget(tokens, budget.updated)
    return Pair(failures, blocked_until, pair.seen, pair.known), budget
