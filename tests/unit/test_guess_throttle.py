from __future__ import annotations

from lwork.accounts import guess_throttle as rules
from lwork.accounts.guess_throttle import Budget, GuessPolicy, Pair

POLICY = GuessPolicy(free_failures=3, base_s=1.0, max_s=60.0, per_account_per_hour=10)


class Ledger:
    """Stores what the rules return, for one account, as the database adapter does."""

    def __init__(self, policy: GuessPolicy) -> None:
        self.policy = policy
        self.pairs: dict[str, Pair] = {}
        self.budget: Budget = rules.full_budget(policy, 0.0)

    def attempt(self, address: str, now: float) -> float:
        verdict = rules.attempt(self.policy, self.pairs.get(address), self.budget, now)
        self.budget = verdict.budget
        if verdict.pair is not None:
            self.pairs[address] = verdict.pair
        return verdict.wait

    def succeeded(self, address: str, now: float) -> None:
        pair, self.budget = rules.succeeded(self.policy, self.pairs.get(address), self.budget, now)
        self.pairs[address] = pair


def test_one_address_waits_exponentially_up_to_the_maximum() -> None:
    ledger = Ledger(GuessPolicy(3, 1.0, 60.0, per_account_per_hour=1000))
    assert [ledger.attempt("x", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    now, waits = 0.0, []
    for _ in range(8):
        wait = ledger.attempt("x", now)  # refused: how long until the next try
        waits.append(wait)
        now += wait
        assert ledger.attempt("x", now) == 0.0
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_a_right_password_clears_the_pair_only() -> None:
    ledger = Ledger(POLICY)
    for _ in range(3):
        ledger.attempt("x", 0.0)
    assert ledger.attempt("x", 0.5) == 0.5
    assert ledger.attempt("y", 0.5) == 0.0  # another address is not delayed
    ledger.succeeded("x", 2.0)
    assert [ledger.attempt("x", 2.0) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_the_account_budget_refills_a_slot_at_a_time_and_spares_known_addresses() -> None:
    ledger = Ledger(POLICY)
    assert ledger.attempt("owner", 0.0) == 0.0
    ledger.succeeded("owner", 0.0)
    assert [ledger.attempt(f"s{i}", 0.0) for i in range(10)] == [0.0] * 10
    assert ledger.attempt("s10", 0.0) == 360.0  # 3600 s / 10 failures
    assert ledger.attempt("owner", 0.0) == 0.0
    assert ledger.attempt("s10", 360.0) == 0.0


def test_a_strangers_pair_is_forgotten_once_its_backoff_has_long_run_out() -> None:
    ledger = Ledger(GuessPolicy(1, 1.0, 60.0, per_account_per_hour=1000))
    ledger.attempt("x", 0.0)
    assert ledger.attempt("x", 0.5) == 0.5
    assert ledger.attempt("x", 1.0) == 0.0  # second failure: waits 2 s
    later = 1.0 + POLICY.forget_after_s + 1
    assert ledger.attempt("x", later) == 0.0
    assert ledger.pairs["x"].failures == 1


def test_an_attempt_never_checked_is_taken_back() -> None:
    ledger = Ledger(GuessPolicy(2, 1.0, 60.0, per_account_per_hour=5))
    assert ledger.attempt("x", 0.0) == 0.0
    assert ledger.attempt("x", 0.0) == 0.0  # the second failure earns a wait...
    pair, ledger.budget = rules.unchecked(ledger.policy, ledger.pairs["x"], ledger.budget)
    assert pair is not None
    ledger.pairs["x"] = pair
    # ...but it was never checked (the hash queue was full): no wait, and its slot is back
    assert (pair.failures, pair.blocked_until, ledger.budget.tokens) == (1, 0.0, 4.0)
    assert ledger.attempt("x", 0.0) == 0.0
