"""Password-guess throttling kept in the database, so it holds across nodes and restarts.

Each attempt runs the pure rules of ``guess_throttle`` on the account's rows while holding
the account's budget row: PostgreSQL locks that row, SQLite's first write takes its one write
lock. So concurrent attempts on one account, on any node, are judged one after the other.
The password itself is checked outside the transaction (it is slow), between ``attempt`` and
``succeeded``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import and_, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lwork.accounts import guess_throttle as rules
from lwork.accounts.guess_throttle import Budget, GuessPolicy, Pair
from lwork.storage.tables import guess_budgets, guess_pairs


def _lock_budget_statement(insert: Any) -> Any:
    # An upsert that changes nothing but locks the row (PostgreSQL) and, as the first
    # statement, takes SQLite's write lock for the whole transaction.
    upsert = insert(guess_budgets)
    return upsert.on_conflict_do_update(
        index_elements=[guess_budgets.c.account], set_={"account": upsert.excluded.account}
    ).returning(guess_budgets.c.tokens, guess_budgets.c.updated)


# Built once (see storage.units): an upsert's ``excluded`` is an alias whose columns and
# collections refer to each other, so one built per login left a reference cycle for the
# collector each time (``bench.soak --census``).
_LOCK_BUDGET = {
    "postgresql": _lock_budget_statement(postgresql.insert),
    "sqlite": _lock_budget_statement(sqlite.insert),
}
# The rows' keys bound under names of their own: an UPDATE without ``values`` sets the columns
# its parameters name, and a column's own name is reserved for that.
_THIS_PAIR = and_(
    guess_pairs.c.account == bindparam("of_account"),
    guess_pairs.c.address == bindparam("of_address"),
)
_PAIR = select(
    guess_pairs.c.failures, guess_pairs.c.blocked_until, guess_pairs.c.seen, guess_pairs.c.known
).where(_THIS_PAIR)
_SAVE_BUDGET = update(guess_budgets).where(guess_budgets.c.account == bindparam("of_account"))
_UPDATE_PAIR = update(guess_pairs).where(_THIS_PAIR)
_INSERT_PAIR = guess_pairs.insert()


class GuessStore:
    def __init__(self, engine: AsyncEngine, policy: GuessPolicy, wall: Callable[[], float]) -> None:
        self._engine = engine
        self._policy = policy
        self._wall = wall
        self._lock_budget_statement = _LOCK_BUDGET[
            "postgresql" if engine.dialect.name == "postgresql" else "sqlite"
        ]

    async def attempt(self, account: str, address: str) -> float:
        """0: go ahead (counted as a failure until ``succeeded``); else seconds to wait."""
        async with self._engine.begin() as conn:
            budget, now = await self._lock_budget(conn, account)
            pair = await self._pair(conn, account, address)
            verdict = rules.attempt(self._policy, pair, budget, now)
            if verdict.budget != budget:
                await self._save_budget(conn, account, verdict.budget)
            if verdict.pair is not None:
                await self._save_pair(conn, account, address, verdict.pair, exists=pair is not None)
            if pair is None:
                # A new stranger: forget this account's strangers that served their backoff
                # (only its rows, which the budget row's lock covers: no waits between accounts).
                await conn.execute(
                    delete(guess_pairs).where(
                        and_(
                            guess_pairs.c.account == account,
                            guess_pairs.c.known.is_(False),
                            guess_pairs.c.seen < now - self._policy.forget_after_s,
                        )
                    )
                )
            return verdict.wait

    async def succeeded(self, account: str, address: str) -> None:
        async with self._engine.begin() as conn:
            budget, now = await self._lock_budget(conn, account)
            pair = await self._pair(conn, account, address)
            new_pair, new_budget = rules.succeeded(self._policy, pair, budget, now)
            if new_budget != budget:
                await self._save_budget(conn, account, new_budget)
            await self._save_pair(conn, account, address, new_pair, exists=pair is not None)
            if pair is not None and pair.known:
                return
            # A new address of the owner's: keep only the most recent ones.
            known = (
                await conn.scalars(
                    select(guess_pairs.c.address)
                    .where(and_(guess_pairs.c.account == account, guess_pairs.c.known.is_(True)))
                    .order_by(guess_pairs.c.seen.desc())
                    .offset(self._policy.known_per_account)
                )
            ).all()
            if known:
                await conn.execute(
                    delete(guess_pairs).where(
                        and_(guess_pairs.c.account == account, guess_pairs.c.address.in_(known))
                    )
                )

    async def unchecked(self, account: str, address: str) -> None:
        """Take back an attempt whose password was never checked."""
        async with self._engine.begin() as conn:
            budget, _ = await self._lock_budget(conn, account)
            pair = await self._pair(conn, account, address)
            new_pair, new_budget = rules.unchecked(self._policy, pair, budget)
            if new_budget != budget:
                await self._save_budget(conn, account, new_budget)
            if new_pair is not None and new_pair != pair:
                await self._save_pair(conn, account, address, new_pair, exists=True)

    async def _lock_budget(self, conn: AsyncConnection, account: str) -> tuple[Budget, float]:
        """The account's budget, locked, and the time once the lock is held: an attempt that
        waited for it must not be judged at a moment before the one it waited for."""
        full = rules.full_budget(self._policy, self._wall())
        values = {"account": account, "tokens": full.tokens, "updated": full.updated}
        row = (await conn.execute(self._lock_budget_statement, values)).one()
        return Budget(row.tokens, row.updated), self._wall()

    async def _pair(self, conn: AsyncConnection, account: str, address: str) -> Pair | None:
        row = (await conn.execute(_PAIR, {"of_account": account, "of_address": address})).first()
        return Pair(row.failures, row.blocked_until, row.seen, row.known) if row else None

    async def _save_budget(self, conn: AsyncConnection, account: str, budget: Budget) -> None:
        values = {"of_account": account, "tokens": budget.tokens, "updated": budget.updated}
        await conn.execute(_SAVE_BUDGET, values)

    async def _save_pair(
        self, conn: AsyncConnection, account: str, address: str, pair: Pair, *, exists: bool
    ) -> None:
        values = {
            "failures": pair.failures,
            "blocked_until": pair.blocked_until,
            "seen": pair.seen,
            "known": pair.known,
        }
        if exists:
            await conn.execute(_UPDATE_PAIR, {"of_account": account, "of_address": address,
                                              **values})  # fmt: skip
        else:
            await conn.execute(_INSERT_PAIR, {"account": account, "address": address, **values})
