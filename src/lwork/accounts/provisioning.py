"""Provisioning of ``dth`` accounts, as the operator's billing system (BOSS) does it.

One service for both doors: ``lwork boss …`` on the server and the signed BOSS HTTP interface
(CONTRACT §9, ``lwork.boss``). Refusals are exceptions carrying the reason the BOSS is answered.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable

from lwork.accounts.passwords import PasswordService
from lwork.accounts.phone import normalise_phone
from lwork.accounts.store import AccountStore
from lwork.accounts.store_records import AlreadyExists

# Not an Argon2 hash: no password verifies against it, so a closed account's login, activation
# password and password reset all fail, while its row (and its CDRs and ledger) stay.
CLOSED = "!closed"


class Refused(Exception):
    """The BOSS asked for something that cannot be done; ``reason`` is its answer."""

    reason = "refused"


class NotProvisioned(Refused, LookupError):
    reason = "account_not_exist"


class AlreadyProvisioned(Refused, ValueError):
    reason = "account_already_exist"


class AccountClosed(Refused, ValueError):
    reason = "account_closed"


class NumberTaken(Refused, ValueError):
    reason = "phone_already_bound"


class NotANumber(Refused, ValueError):
    reason = "invalid_phone"


class ProvisioningService:
    def __init__(
        self,
        store: AccountStore,
        passwords: PasswordService,
        on_deactivated: Callable[[str], Awaitable[object]] | None = None,
        on_opened: Callable[[str, str], Awaitable[object]] | None = None,
        on_sessions_ended: Callable[[str, list[str]], Awaitable[object]] | None = None,
    ) -> None:
        """``on_deactivated(uuid)`` ends the account's live calls in this process at once
        (other processes and nodes find the deactivation by their periodic sweep);
        ``on_opened(uuid, group)`` gives a new account what it starts with;
        ``on_sessions_ended(uuid, device_ids)`` tells the devices of a closed account."""
        self._store = store
        self._passwords = passwords
        self._on_deactivated = on_deactivated
        self._on_opened = on_opened
        self._on_sessions_ended = on_sessions_ended

    async def open(self, account: str, pwd: str, group: str, now: float) -> None:
        number = self._number(account)
        if await self._store.provisioned(number) is not None:
            raise AlreadyProvisioned(f"account {account} is already provisioned")
        await self._store.provision(number, group, await self._passwords.hash(pwd), now)
        if self._on_opened is not None:
            await self._on_opened(number, group)

    async def set_active(self, account: str, active: bool) -> None:
        number = await self._open_number(account)
        await self._store.update_provisioning(number, active=active)
        if not active and self._on_deactivated is not None:
            await self._on_deactivated(number)

    async def bind(self, account: str, phone: str | None) -> None:
        number = await self._open_number(account)
        did = self._number(phone) if phone else None
        try:
            await self._store.update_provisioning(number, did=did)
        except AlreadyExists as exc:
            raise NumberTaken(f"{phone} is already bound to another account") from exc

    async def close(self, account: str, now: float) -> None:
        """The account can no longer log in or call; its sessions and calls end; its records,
        ledger and number stay (the number is not opened again)."""
        number = await self._open_number(account)
        await self._store.update_provisioning(number, active=False, did=None, pwd_hash=CLOSED)
        await self._store.set_password(number, CLOSED)
        ended = await self._store.end_sessions(number, now, "closed")
        if self._on_deactivated is not None:
            await self._on_deactivated(number)
        if self._on_sessions_ended is not None:
            await self._on_sessions_ended(number, sorted({s.device_id for s in ended}))

    async def run(self, command: str, args: argparse.Namespace) -> str:
        """One CLI sub-command; returns what to print."""
        if command == "open":
            await self.open(args.account, args.pwd, args.group, time.time())
            return f"provisioned {args.account} ({args.group})"
        if command in ("activate", "deactivate"):
            await self.set_active(args.account, command == "activate")
            return f"{command}d {args.account}"
        if command == "close":
            await self.close(args.account, time.time())
            return f"closed {args.account}"
        await self.bind(args.account, args.phone if command == "bind" else None)
        return f"{command} {args.account} {args.phone or ''}".rstrip()

    async def _open_number(self, account: str) -> str:
        """The provisioned, not closed, number of ``account``."""
        number = self._number(account)
        provisioned = await self._store.provisioned(number)
        if provisioned is None:
            raise NotProvisioned(f"account {account} is not provisioned")
        if provisioned.pwd_hash == CLOSED:
            raise AccountClosed(f"account {account} is closed")
        return number

    @staticmethod
    def _number(raw: str) -> str:
        number = normalise_phone(raw)
        if not number:
            raise NotANumber(f"not a phone number: {raw!r}")
        return number
