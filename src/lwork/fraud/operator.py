"""``lwork fraud``: the operator inspects an account's limits, overrides them, and reads the
velocity alarms. The running servers read overrides and blocks from the database at each
call, so a change takes effect on the next call without a restart."""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

from lwork.accounts.phone import normalise_phone
from lwork.billing.service import MINUTES_GROUPS
from lwork.fraud.limits import Override
from lwork.fraud.prefixes import PrefixRules, checked_prefix
from lwork.fraud.service import FraudService

COIN = 100


def add_commands(fraud: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fraud.add_parser("show", help="an account's limits, override and blocks").add_argument(
        "account"
    )
    setter = fraud.add_parser("set", help="override an account's limits (given options only)")
    setter.add_argument("account")
    setter.add_argument("--daily-cap", help="coins (common) or package minutes (dth) a day; "
                        "0: no cap; 'group': the group's again")  # fmt: skip
    for name, what in (
        ("allow-prefix", "an E.164 prefix allowed on top of the group's"),
        ("deny-prefix", "an E.164 prefix denied on top of the group's"),
        ("callback-local", "a number the account may use as callback local"),
    ):
        setter.add_argument(f"--{name}", action="append", metavar="VALUE",
                            help=f"{what} (repeat for more; '' empties the list)")  # fmt: skip
    setter.add_argument("--reset", action="store_true", help="drop the whole override first")
    alarms = fraud.add_parser("alarms", help="velocity alarms and the blocks they set")
    alarms.add_argument("--hours", type=float, default=24.0, help="raised within (default 24)")
    alarms.add_argument("--active", action="store_true", help="only blocks still in force")
    fraud.add_parser("unblock", help="end the blocks of an account or a range").add_argument(
        "subject", help="an account, or a range such as +8613800"
    )


async def run(args: argparse.Namespace, fraud: FraudService, now: float) -> str:
    zone = ZoneInfo(fraud.policy.timezone)
    if args.fraud_command == "alarms":
        since = now - args.hours * 3600
        rows = await fraud.store.alarms(since, now, active_only=args.active)
        lines = [
            f"{_time(a.created_at, zone)} {a.kind} {a.subject} "
            + (
                f"BLOCKED until {_time(a.blocked_until, zone)}"
                if a.blocked_until > now
                else "ended"
            )
            + f" [{a.node}]: {a.facts}"
            for a in rows
        ]
        return "\n".join(lines) or "no alarms"
    if args.fraud_command == "unblock":
        subject = args.subject if args.subject.startswith("+") else normalise_phone(args.subject)
        ended = await fraud.store.unblock(subject, now)
        return f"{subject}: {ended} block(s) ended" if ended else f"{subject} was not blocked"
    uuid = normalise_phone(args.account)
    group = await fraud.group_of(uuid)
    if group is None:
        raise LookupError(f"account {args.account} does not exist")
    if args.fraud_command == "set":
        changed = _changed(args, group, await _current(fraud, uuid, args))
        if changed == Override():  # nothing left to override
            await fraud.store.clear_override(uuid)
        else:
            await fraud.store.set_override(uuid, changed, now)
    return await _show(fraud, uuid, group, now, zone)


async def _current(fraud: FraudService, uuid: str, args: argparse.Namespace) -> Override:
    if args.reset:
        await fraud.store.clear_override(uuid)
        return Override()
    return await fraud.store.override(uuid) or Override()


def _changed(args: argparse.Namespace, group: str, override: Override) -> Override:
    if args.daily_cap is not None:
        override = replace(override, daily_cap=_cap(args.daily_cap, group))
    if args.allow_prefix is not None:
        allow = tuple(checked_prefix(p) for p in args.allow_prefix if p)
        override = replace(override, allow_prefixes=allow)
    if args.deny_prefix is not None:
        deny = tuple(checked_prefix(p) for p in args.deny_prefix if p)
        override = replace(override, deny_prefixes=deny)
    if args.callback_local is not None:
        numbers = tuple(normalise_phone(n) for n in args.callback_local if n)
        if not all(numbers):
            raise ValueError("--callback-local takes phone numbers")
        override = replace(override, callback_local=numbers)
    return override


def _cap(raw: str, group: str) -> int | None:
    if raw == "group":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("--daily-cap takes an amount, 0, or 'group'") from None
    if not value >= 0:
        raise ValueError("--daily-cap takes an amount, 0, or 'group'")
    return round(value) if group in MINUTES_GROUPS else round(value * COIN)


async def _show(fraud: FraudService, uuid: str, group: str, now: float, zone: ZoneInfo) -> str:
    _, limits, override = await fraud.limits(uuid)
    minutes = group in MINUTES_GROUPS
    spent = await fraud.spent_today(uuid, minutes, now)
    blocked = [a for a in await fraud.store.alarms(now, now, active_only=True)
               if a.subject == uuid]  # fmt: skip
    lines = [
        f"{uuid} ({group})",
        f"daily cap: {_amount(limits.daily_cap, minutes) if limits.daily_cap else 'none'}"
        f" (spent today: {_amount(spent, minutes)})",
        f"call destinations: {_rules(limits.calls)}",
        f"sms destinations: {_rules(limits.sms)}",
        f"calls per minute: {limits.calls_per_minute or 'no limit'}; spending per minute: "
        f"{_amount(limits.spend_per_minute, minutes) if limits.spend_per_minute else 'no limit'}",
        "callback local: own number, bound DID"
        + (", " + ", ".join(override.callback_local) if override and override.callback_local
           else ""),
        "override: " + (_override(override, minutes) if override else "none"),
    ]  # fmt: skip
    lines += [f"BLOCKED until {_time(a.blocked_until, zone)}: {a.facts}" for a in blocked]
    return "\n".join(lines)


def _override(override: Override, minutes: bool) -> str:
    cap = "group's" if override.daily_cap is None else _amount(override.daily_cap, minutes)
    return (f"daily cap {cap}; allow {', '.join(override.allow_prefixes) or '-'}; "
            f"deny {', '.join(override.deny_prefixes) or '-'}; "
            f"callback local {', '.join(override.callback_local) or '-'}")  # fmt: skip


def _rules(rules: PrefixRules) -> str:
    if not rules.allow and not rules.deny:
        return "everything"
    return f"allow {', '.join(rules.allow) or '-'}; deny {', '.join(rules.deny) or '-'}"


def _amount(value: int, minutes: bool) -> str:
    if minutes:
        return f"{value} minutes"
    whole, cents = divmod(value, COIN)
    return f"{whole} coins" if not cents else f"{value / COIN:.2f} coins"


def _time(wall: float, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(wall, zone).isoformat(timespec="seconds")
