"""The operator's billing commands (``lwork boss credit|package|balance|cdrs|products``):
top-ups, dated minute packages, balance and call record reads, the product catalogue. The
signed BOSS HTTP interface (``lwork.boss``) calls the same."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from lwork.accounts.phone import normalise_phone
from lwork.accounts.service import AccountService
from lwork.billing.rating import Balance, coins_value, to_cents
from lwork.billing.service import MINUTES_GROUPS, BillingService
from lwork.boss.cdrs import CdrReader
from lwork.settings import ProductSettings

COMMANDS = ("credit", "package", "balance", "cdrs")
MAX_PERIODS = 120
"""Longest package the BOSS may grant, in months (ten years)."""


def add_commands(boss: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    credit = boss.add_parser("credit", help="add coins or package minutes to an account")
    credit.add_argument("account")
    credit.add_argument("--coins", type=float, default=0.0)
    credit.add_argument("--gift-coins", type=float, default=0.0)
    credit.add_argument("--minutes", type=int, default=0, help="package minutes (dth)")
    credit.add_argument("--ref", help="unique reference: a repeated command credits once")
    credit.add_argument("--note", default=None)
    package = boss.add_parser("package", help="a package of minutes per calendar month (dth)")
    package.add_argument("account")
    package.add_argument("--minutes", type=int, required=True, help="minutes per period")
    package.add_argument("--period", choices=["month"], default="month")
    package.add_argument("--periods", type=int, default=1, help="how many months")
    package.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        required=True,
        help="YYYY-MM-DD (billing.timezone), the first period's first day",
    )
    package.add_argument("--ref", help="unique reference: a repeated command grants once")
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


class UnknownAccount(LookupError):
    reason = "account_not_exist"


class NothingToCredit(ValueError):
    reason = "invalid_amount"


@dataclass(frozen=True, slots=True)
class Standing:
    """An account's group and balance after a BOSS action."""

    uuid: str
    group: str
    balance: Balance


async def credit(
    billing: BillingService, accounts: AccountService, account: str, amount: Balance, ref: str,
    note: str | None = None,
) -> tuple[bool, Standing]:  # fmt: skip
    """Top ``account`` up by ``amount`` once per ``ref``; (applied now, the standing after)."""
    uuid = await known_account(accounts, account)
    if min(amount.coins, amount.gift_coins, amount.minutes) < 0 or amount == Balance():
        raise NothingToCredit("credit a positive amount of --coins, --gift-coins or --minutes")
    applied = await billing.credit(uuid, "credit:" + ref, amount, note)
    return applied, await standing(billing, accounts, uuid)


async def package(
    billing: BillingService, accounts: AccountService, account: str, minutes: int,
    periods: int, start: dt.date, ref: str,
) -> tuple[bool, Standing]:  # fmt: skip
    """Grant ``account`` ``minutes`` per month for ``periods`` months from ``start``, once per
    ``ref``; (applied now, the standing after)."""
    uuid = await known_account(accounts, account)
    if minutes <= 0 or not 0 < periods <= MAX_PERIODS:
        raise NothingToCredit(f"give minutes > 0 and 1..{MAX_PERIODS} periods")
    applied = await billing.package(uuid, "package:" + ref, minutes, periods, start)
    return applied, await standing(billing, accounts, uuid)


async def standing(billing: BillingService, accounts: AccountService, account: str) -> Standing:
    uuid = await known_account(accounts, account)
    group = await accounts.group(uuid)
    assert group is not None
    return Standing(uuid, group, await billing.balance(uuid))


def cdr_reader(billing: BillingService, batch: int = 500) -> CdrReader:
    """Call records by dates of ``billing.timezone``, named as CONTRACT §9 names them."""
    return CdrReader(billing.ledger.engine, billing.zone, billing.day_start, batch)


async def run(
    command: str, args: argparse.Namespace, billing: BillingService, accounts: AccountService
) -> str:
    if command == "credit":
        amount = Balance(to_cents(args.coins), to_cents(args.gift_coins), args.minutes)
        ref = args.ref or "cli:" + secrets.token_hex(8)
        applied, after = await credit(billing, accounts, args.account, amount, ref, args.note)
        if not applied:
            return f"reference {ref} was credited before: nothing changed"
        return f"credited {after.uuid} (reference {ref})\n" + _balance_line(after)
    if command == "package":
        ref = args.ref or "cli:" + secrets.token_hex(8)
        applied, after = await package(billing, accounts, args.account, args.minutes,
                                       args.periods, args.start, ref)  # fmt: skip
        if not applied:
            return f"reference {ref} was granted before: nothing changed"
        return (f"granted {after.uuid} (reference {ref})\n" + _balance_line(after) + "\n"
                + await _package_lines(billing, after.uuid))  # fmt: skip
    if command == "cdrs":
        return await _cdr_lines(billing, await known_account(accounts, args.account), args.start,
                                args.end)  # fmt: skip
    after = await standing(billing, accounts, args.account)
    if after.group in MINUTES_GROUPS:
        return _balance_line(after) + "\n" + await _package_lines(billing, after.uuid)
    return _balance_line(after)


async def known_account(accounts: AccountService, account: str) -> str:
    uuid = normalise_phone(account)
    if not uuid or await accounts.group(uuid) is None:
        raise UnknownAccount(f"account {account} does not exist")
    return uuid


async def _cdr_lines(billing: BillingService, uuid: str, start: dt.date, end: dt.date) -> str:
    if end < start:
        raise ValueError("--end is before --start")
    lines = [
        json.dumps(row, ensure_ascii=False)
        async for batch in cdr_reader(billing).records(uuid, start, end)
        for row in batch
    ]
    return "\n".join(lines) or f"no calls of {uuid}"


async def _package_lines(billing: BillingService, uuid: str) -> str:
    lines = [
        f"  {bucket.minutes_left} min from {billing.day(bucket.valid_from)} "
        + ("(no expiry)" if bucket.expires_at is None
           else f"to {billing.last_day(bucket.expires_at)}")
        for bucket in await billing.packages(uuid)
    ]  # fmt: skip
    return "\n".join(lines) or "  no packages"


def _balance_line(after: Standing) -> str:
    balance, uuid, group = after.balance, after.uuid, after.group
    if group in MINUTES_GROUPS:
        return f"{uuid} ({group}): {balance.minutes} package minutes usable now"
    return (f"{uuid} ({group}): {coins_value(balance.coins)} coins, "
            f"{coins_value(balance.gift_coins)} gift coins")  # fmt: skip
