"""The account page: one account's group, balance and packages, its provisioning (active, bound
DID), its app sessions (devices), and its latest call records and orders. ``support`` sees it
all; the forms that change it (``account_actions.py``) are an administrator's."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lwork.accounts.service import AccountService
from lwork.admin.gate import Visitor
from lwork.admin.pages import local_time, render
from lwork.admin.records import CdrPages
from lwork.admin.web import Console
from lwork.billing.operator import known_account
from lwork.billing.rating import coins_value
from lwork.billing.service import MINUTES_GROUPS, BillingService
from lwork.observability import mask_numbers
from lwork.storage.tables import accounts as accounts_table
from lwork.storage.tables import orders, provisioning, sessions

RECENT = 20
"""Sessions, records and orders shown of each kind, newest first."""
NOTICES = frozenset({
    "deactivate", "activate", "end_sessions", "reset_code", "bind", "unbind", "credit",
    "credit_again",
})  # fmt: skip
"""What a change's redirect may say it did (``?done=``); anything else is not shown."""


class AccountPage:
    def __init__(
        self, console: Console, engine: AsyncEngine, accounts: AccountService,
        billing: BillingService, records: CdrPages,
    ) -> None:  # fmt: skip
        self.console = console
        self.engine = engine
        self.accounts = accounts
        self.billing = billing
        self.records = records
        self.zone: ZoneInfo = billing.zone
        self.mask = not console.gate.settings.full_numbers

    def routes(self) -> list[Route]:
        return [Route("/accounts", self.console.guarded(self.page), methods=["GET"])]

    def when(self, at: float | None) -> str:
        return local_time(at, self.zone)

    async def page(self, request: Request) -> Response:
        visitor = await self.console.gate.reader(request)
        asked = request.query_params.get("account", "").strip()[:64]
        done = request.query_params.get("done", "")
        return await self.show(request, visitor, asked, notice=done if done in NOTICES else "")

    async def show(
        self, request: Request, visitor: Visitor, asked: str, status: int = 200,
        notice: str = "", problem: str = "",
    ) -> Response:  # fmt: skip
        """The page of account ``asked`` (as typed), with the outcome of a change if any."""
        lang = self.console.gate.lang(request)
        context: dict[str, Any] = {
            "who": visitor.operator, "csrf": visitor.csrf, "section": "accounts",
            "here": "/admin/accounts", "asked": asked, "found": None, "notice": notice,
            "problem": problem,
        }  # fmt: skip
        if not asked:
            return render("account.html", lang, status, **context)
        try:
            uuid = await known_account(self.accounts, asked)
        except LookupError:
            return render("account.html", lang, 404, **context)
        try:
            context["found"] = await self.view(uuid)
        except LookupError:  # gone between the two reads
            return render("account.html", lang, 404, **context)
        return render("account.html", lang, status, **context)

    async def view(self, uuid: str) -> dict[str, Any]:
        show = mask_numbers if self.mask else str
        async with self.engine.connect() as conn:
            account = (
                await conn.execute(select(accounts_table).where(accounts_table.c.uuid == uuid))
            ).first()
            devices = (await conn.execute(
                select(sessions).where(sessions.c.uuid == uuid)
                .order_by(sessions.c.created_at.desc()).limit(RECENT)
            )).all()  # fmt: skip
            provisioned = (await conn.execute(
                select(provisioning).where(provisioning.c.account == uuid)
            )).first()  # fmt: skip
            paid = (await conn.execute(
                select(orders).where(orders.c.uuid == uuid)
                .order_by(orders.c.created_at.desc()).limit(RECENT)
            )).all()  # fmt: skip
        # A number the BOSS provisioned whose user has not registered yet has no account row:
        # its page shows the provisioning (group, creation) and what billing holds for it.
        source = account if account is not None else provisioned
        if source is None:
            raise LookupError(uuid)
        group, created = source.group_id, source.created_at
        balance = await self.billing.balance(uuid)
        minutes = group in MINUTES_GROUPS
        packages = [
            {"left": b.minutes_left, "from": self.billing.day(b.valid_from),
             "to": "" if b.expires_at is None else self.billing.last_day(b.expires_at)}
            for b in (await self.billing.packages(uuid) if minutes else [])
        ]  # fmt: skip
        records = await self.records.latest(uuid, RECENT)
        return {
            "uuid": show(uuid),
            "name": (account.name or "") if account is not None else "",
            "registered": account is not None,
            "group": group,
            "created": self.when(created),
            "info": _short(account.info) if account is not None else "",
            "minutes_group": minutes,
            "coins": coins_value(balance.coins),
            "gift_coins": coins_value(balance.gift_coins),
            "minutes": balance.minutes,
            "packages": packages,
            # Only numbers the BOSS provisioned can be deactivated or given a DID.
            "provisioned": provisioned is not None,
            "active": provisioned is None or provisioned.active,
            "did": show(provisioned.did) if provisioned is not None and provisioned.did else "",
            "devices": [
                {
                    "device": d.device_id,
                    "os": d.os_type,
                    "since": self.when(d.created_at),
                    "seen": self.when(d.last_seen),
                    "poll": self.when(d.last_poll),
                    "poll_ip": d.poll_ip or "",
                    "ended": self.when(d.ended_at),
                    "end_reason": d.end_reason or "",
                }
                for d in devices
            ],  # fmt: skip
            "records": records,
            "orders": [
                {
                    "payid": o.payid,
                    "product": o.product_id,
                    "pay_type": o.pay_type,
                    "money": f"{o.money / 100:.2f}",
                    "state": o.state,
                    "refundable": o.state == "paid",
                    "created": self.when(o.created_at),
                    "paid": self.when(o.paid_at),
                    "note": o.note or "",
                }
                for o in paid
            ],  # fmt: skip
        }


def _short(info: str | None) -> str:
    """What the app stored with ``add_info``, as one line of at most 200 characters."""
    if not info:
        return ""
    try:
        text = json.dumps(json.loads(info), ensure_ascii=False)
    except ValueError:
        text = info
    return text if len(text) <= 200 else text[:199] + "…"
