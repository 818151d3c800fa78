"""The operator's billing commands (``lwork boss credit|balance|cdrs|products``): top-ups,
balance reads, call records and the product catalogue.

The authenticated BOSS HTTP interface (CONTRACT §9) will call the same service.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
from collections.abc import Sequence

from lwork.accounts.phone import normalise_phone
from lwork.accounts.service import AccountService
from lwork.billing.rating import Balance, coins_value, to_cents
from lwork.billing.service import MINUTES_GROUPS, BillingService
from lwork.calls.records import boss_view
from lwork.calls.records_store import RecordStore
from lwork.settings import ProductSettings

COMMANDS = ("credit", "balance", "cdrs")


def add_commands(boss: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    credit = boss.add_parser("credit", help="add coins or package minutes to an account")
    credit.add_argument("account")
    credit.add_argument("--coins", type=float, default=0.0)
    credit.add_argument("--gift-coins", type=float, default=0.0)
    credit.add_argument("--minutes", type=int, default=0, help="package minutes (dth)")
    credit.add_argument("--ref", help="unique reference: a repeated command credits once")
    credit.add_argument("--note", default=None)
    boss.add_parser("balance", help="coins and package minutes of an account").add_argument(
        "account"
    )
    boss.add_parser("products", help="the product catalogue (billing.products)")
    cdrs = boss.add_parser("cdrs", help="an account's call detail records, one JSON line each")
    cdrs.add_argument("account")
    cdrs.add_argument("--start", type=dt.date.fromisoformat, required=True, help="YYYY-MM-DD")
    cdrs.add_argument("--end", type=dt.date.fromisoformat, required=True,
                      help="YYYY-MM-DD, inclusive")  # fmt: skip


def product_lines(entries: Sequence[ProductSettings]) -> str:
    """``lwork boss products``: one tab-separated line per product (no database needed)."""
    from lwork.payments.products import describe

    return "\n".join(describe(entry) for entry in entries) or "no products configured"


async def run(
    command: str, args: argparse.Namespace, billing: BillingService, accounts: AccountService
) -> str:
    uuid = normalise_phone(args.account)
    group = await accounts.group(uuid)
    if group is None:
        raise LookupError(f"account {args.account} does not exist")
    if command == "credit":
        amount = Balance(to_cents(args.coins), to_cents(args.gift_coins), args.minutes)
        if min(amount.coins, amount.gift_coins, amount.minutes) < 0 or amount == Balance():
            raise ValueError("credit a positive amount of --coins, --gift-coins or --minutes")
        ref = args.ref or "cli:" + secrets.token_hex(8)
        if not await billing.credit(uuid, "credit:" + ref, amount, args.note):
            return f"reference {ref} was credited before: nothing changed"
        done = f"credited {uuid} (reference {ref})"
        return done + "\n" + await _balance_line(billing, uuid, group)
    if command == "cdrs":
        return await _cdr_lines(billing, uuid, args.start, args.end)
    return await _balance_line(billing, uuid, group)


async def _cdr_lines(billing: BillingService, uuid: str, start: dt.date, end: dt.date) -> str:
    """Records of calls started from ``start`` to ``end`` (dates of ``billing.timezone``), as
    CONTRACT §9 names their fields."""
    if end < start:
        raise ValueError("--end is before --start")
    first = billing.day_start(start)
    after = billing.day_start(end + dt.timedelta(days=1))
    rows = await RecordStore(billing.ledger.engine, billing.ledger).rows(uuid, first, after)
    lines = (json.dumps(boss_view(row, billing.zone), ensure_ascii=False) for row in rows)
    return "\n".join(lines) or f"no calls of {uuid}"


async def _balance_line(billing: BillingService, uuid: str, group: str) -> str:
    balance = await billing.ledger.balance(uuid)
    if group in MINUTES_GROUPS:
        return f"{uuid} ({group}): {balance.minutes} package minutes"
    return (f"{uuid} ({group}): {coins_value(balance.coins)} coins, "
            f"{coins_value(balance.gift_coins)} gift coins")  # fmt: skip
