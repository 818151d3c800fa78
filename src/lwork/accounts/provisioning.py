"""Provisioning of ``dth`` accounts, as the operator's billing system (BOSS) does it.

The CLI uses this now; the authenticated BOSS HTTP interface (CONTRACT §9) will call the same.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable

from lwork.accounts.passwords import PasswordService
from lwork.accounts.phone import normalise_phone
from lwork.accounts.store import AccountStore
from lwork.accounts.store_records import AlreadyExists


class ProvisioningService:
    def __init__(
        self,
        store: AccountStore,
        passwords: PasswordService,
        on_deactivated: Callable[[str], Awaitable[object]] | None = None,
    ) -> None:
        """``on_deactivated(uuid)`` ends the account's live calls in this process at once
        (other processes and nodes find the deactivation by their periodic sweep)."""
        self._store = store
        self._passwords = passwords
        self._on_deactivated = on_deactivated

    async def open(self, account: str, pwd: str, group: str, now: float) -> None:
        await self._store.provision(
            self._number(account), group, await self._passwords.hash(pwd), now
        )

    async def set_active(self, account: str, active: bool) -> None:
        number = self._number(account)
        if not await self._store.update_provisioning(number, active=active):
            raise LookupError(f"account {account} is not provisioned")
        if not active and self._on_deactivated is not None:
            await self._on_deactivated(number)

    async def bind(self, account: str, phone: str | None) -> None:
        did = self._number(phone) if phone else None
        try:
            found = await self._store.update_provisioning(self._number(account), did=did)
        except AlreadyExists as exc:
            raise ValueError(f"{phone} is already bound to another account") from exc
        if not found:
            raise LookupError(f"account {account} is not provisioned")

    async def run(self, command: str, args: argparse.Namespace) -> str:
        """One CLI sub-command; returns what to print."""
        if command == "open":
            await self.open(args.account, args.pwd, args.group, time.time())
            return f"provisioned {args.account} ({args.group})"
        if command in ("activate", "deactivate"):
            await self.set_active(args.account, command == "activate")
            return f"{command}d {args.account}"
        await self.bind(args.account, args.phone if command == "bind" else None)
        return f"{command} {args.account} {args.phone or ''}".rstrip()

    @staticmethod
    def _number(raw: str) -> str:
        number = normalise_phone(raw)
        if not number:
            raise ValueError(f"not a phone number: {raw!r}")
        return number
