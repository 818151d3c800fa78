from __future__ import annotations

from lwork.accounts.guess_throttle import GuessPolicy, GuessThrottle

POLICY = GuessPolicy(free_failures=3, base_s=1.0, max_s=60.0, per_account_per_hour=10)


def fail(throttle: GuessThrottle, times: int, account: str, address: str, now: float) -> None:
    for _ in range(times):
        assert throttle.attempt(account, address, now) == 0.0


def test_one_address_waits_exponentially_up_to_the_maximum() -> None:
    throttle = GuessThrottle(GuessPolicy(3, 1.0, 60.0, per_account_per_hour=1000))
    fail(throttle, 3, "a", "x", 0.0)
    now, waits = 0.0, []
    for _ in range(8):
        wait = throttle.attempt("a", "x", now)  # refused: how long until the next try
        waits.append(wait)
        now += wait
        assert throttle.attempt("a", "x", now) == 0.0
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_a_right_password_clears_the_pair_only() -> None:
    throttle = GuessThrottle(POLICY)
    fail(throttle, 3, "a", "x", 0.0)
    assert throttle.attempt("a", "x", 0.5) == 0.5
    assert throttle.attempt("a", "y", 0.5) == 0.0  # another address is not delayed
    throttle.succeeded("a", "x", 2.0)
    fail(throttle, 3, "a", "x", 2.0)


def test_the_account_budget_refills_a_slot_at_a_time_and_spares_known_addresses() -> None:
    throttle = GuessThrottle(POLICY)
    assert throttle.attempt("a", "owner", 0.0) == 0.0
    throttle.succeeded("a", "owner", 0.0)
    for i in range(10):
        assert throttle.attempt("a", f"s{i}", 0.0) == 0.0
    assert throttle.attempt("a", "s10", 0.0) == 360.0  # 3600 s / 10 failures
    assert throttle.attempt("a", "owner", 0.0) == 0.0
    assert throttle.attempt("a", "s10", 360.0) == 0.0
    assert throttle.attempt("b", "s10", 0.0) == 0.0  # per account


def test_memory_is_bounded() -> None:
    throttle = GuessThrottle(
        GuessPolicy(free_failures=1, base_s=1, max_s=10, per_account_per_hour=5, max_keys=50)
    )
    for i in range(1000):
        throttle.attempt(f"a{i}", f"x{i}", 0.0)
        throttle.succeeded(f"a{i}", f"y{i}", 0.0)
    assert max(len(throttle._pairs), len(throttle._known), len(throttle._budgets)) <= 50
