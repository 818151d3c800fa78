"""``lwork boss orders list | reconcile | refund``: the operator's order commands, over the
same PaymentService the BOSS interface uses."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from decimal import Decimal

from lwork.accounts.service import AccountService
from lwork.billing import operator
from lwork.payments.service import STATES, PaymentService


def add_commands(boss: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    orders = boss.add_parser("orders", help="payment orders: list, reconcile, refund")
    sub = orders.add_subparsers(dest="orders_command", required=True)
    listing = sub.add_parser("list", help="orders opened in a date range, one JSON line each")
    listing.add_argument("--account", help="only this account's")
    today = dt.date.today().isoformat()
    listing.add_argument("--start", type=dt.date.fromisoformat, default=today,
                         help="YYYY-MM-DD (default today)")  # fmt: skip
    listing.add_argument("--end", type=dt.date.fromisoformat, default=today,
                         help="YYYY-MM-DD, inclusive (default today)")  # fmt: skip
    listing.add_argument("--state", choices=STATES)
    sub.add_parser("reconcile", help="ask the providers about orders still waiting, now")
    refund = sub.add_parser("refund", help="refund a paid order and take back its credit")
    refund.add_argument("payid")
    refund.add_argument("--amount", help="yuan to give back (default: the whole price)")
    refund.add_argument("--reason", default="refund by the operator")


async def run(args: argparse.Namespace, payments: PaymentService, accounts: AccountService) -> str:
    if args.orders_command == "reconcile":
        outcomes = await payments.reconciler.round()
        return json.dumps(dict(sorted(outcomes.items()))) if outcomes else "no order waiting"
    if args.orders_command == "refund":
        fen = None if args.amount is None else _fen(args.amount)
        done = await payments.refund(args.payid, fen, args.reason)
        return json.dumps(done.answer())
    uuid = None if args.account is None else await operator.known_account(accounts, args.account)
    listed = await payments.orders(uuid, args.start, args.end, args.state)
    lines = [json.dumps(order, ensure_ascii=False) for order in listed["orders"]]
    if listed["truncated"]:
        lines.append("(more: narrow the dates)")
    return "\n".join(lines) or "no orders"


def _fen(amount: str) -> int:
    try:
        fen = Decimal(amount) * 100
    except ArithmeticError as exc:  # InvalidOperation, or Overflow for 1e999999999
        raise ValueError(f"--amount {amount!r} is not a number of yuan") from exc
    if not fen.is_finite() or not 0 < fen < 10**12 or fen != fen.to_integral_value():
        raise ValueError(f"--amount {amount!r} is not a positive amount with two decimals")
    return int(fen)
