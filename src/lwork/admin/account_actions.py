"""An administrator's changes to one account, from its page: deactivate or activate it, end its
app sessions, text it a password-reset code, bind or unbind a DID, credit coins or minutes.

Each goes through the service the BOSS and the CLI use (so a deactivation ends the account's
live calls with ``not_actived``, a credit is applied once per reference) and leaves one row in
the audit trail, refusals included (CSRF, role, bad input, the service's own refusal)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from lwork.accounts.provisioning import NotProvisioned, ProvisioningService
from lwork.accounts.service import COMMON, AccountService
from lwork.admin import action_forms
from lwork.admin.accounts import AccountPage
from lwork.admin.gate import Refused, Visitor, read_form
from lwork.admin.pages import SECURITY_HEADERS
from lwork.admin.web import Console
from lwork.billing import operator
from lwork.billing.rating import Balance, coins_value
from lwork.billing.service import BillingService
from lwork.errors import Failed, TooManyRequests

ENDED_BY_OPERATOR = "operator"
"""The end reason of app sessions an administrator ended (the account page shows it)."""
CREDIT_REF_PREFIX = "console:"
"""The console's credit references, kept apart from the BOSS's in the ledger (a BOSS ``ref``
and an operator's never stand for each other)."""

Action = Callable[[str, dict[str, str], str], Awaitable[tuple[str, dict[str, Any]]]]


class Problem(Exception):
    """A change that did not happen: what the page says (a catalogue key), its status, and
    the result the audit trail keeps."""

    def __init__(self, key: str, status: int, result: str, detail: str = "") -> None:
        super().__init__(key)
        self.key = key
        self.status = status
        self.result = result
        self.detail = detail


class AccountActions:
    def __init__(
        self, console: Console, page: AccountPage, accounts: AccountService,
        provisioning: ProvisioningService, billing: BillingService,
    ) -> None:  # fmt: skip
        self.console = console
        self.page = page
        self.accounts = accounts
        self.provisioning = provisioning
        self.billing = billing
        self.actions: dict[str, Action] = {
            "deactivate": self._deactivate, "activate": self._activate,
            "end_sessions": self._end_sessions, "reset_code": self._reset_code,
            "bind": self._bind, "unbind": self._unbind, "credit": self._credit,
        }  # fmt: skip

    def routes(self) -> list[Route]:
        return [Route("/accounts/{action}", self.console.guarded(self.act), methods=["POST"])]

    async def act(self, request: Request) -> Response:
        action = request.path_params["action"]
        gate = self.console.gate
        if action not in self.actions:
            raise Refused(await self.console.not_found(request))
        form = await read_form(request)
        asked = form.get("account", "").strip()[:64]
        try:
            visitor = await gate.changer(request, form)
        except Refused:
            who = await gate.visitor(request)
            await self.console.record(who, action, {"account": asked}, "forbidden")
            raise
        try:
            uuid = await operator.known_account(self.accounts, asked)
        except LookupError:
            await self.console.record(visitor, action, {"account": asked}, "account_not_exist")
            return await self.page.show(request, visitor, asked, 404)
        try:
            done, fields = await self.actions[action](uuid, form, self.console.client_ip(request))
        except Problem as problem:
            fields = {"account": uuid, "detail": problem.detail or None}
            await self.console.record(visitor, action, fields, problem.result)
            return await self._refused(request, visitor, asked, problem)
        await self.console.record(visitor, action, {"account": uuid, **fields}, "ok")
        query = urlencode({"account": asked, "done": done})
        return RedirectResponse(f"/admin/accounts?{query}", 303, SECURITY_HEADERS)

    async def _refused(
        self, request: Request, visitor: Visitor, asked: str, problem: Problem
    ) -> Response:
        text = self.console.gate.translate(request, problem.key)
        shown = f"{text}: {problem.detail}" if problem.detail else text
        return await self.page.show(request, visitor, asked, problem.status, problem=shown)

    async def _deactivate(self, uuid: str, form: dict[str, str], ip: str) -> tuple[str, Any]:
        await self._set_active(uuid, False)
        return "deactivate", {}

    async def _activate(self, uuid: str, form: dict[str, str], ip: str) -> tuple[str, Any]:
        await self._set_active(uuid, True)
        return "activate", {}

    async def _set_active(self, uuid: str, active: bool) -> None:
        # The BOSS's path: a deactivation ends the account's live calls here at once
        # (``not_actived``) and on the other nodes by their account sweep.
        try:
            await self.provisioning.set_active(uuid, active)
        except NotProvisioned as exc:
            raise Problem("not_provisioned", 409, "not_provisioned") from exc
        except ValueError as exc:
            reason = getattr(exc, "reason", "invalid_params")
            raise Problem("refused_by_service", 409, reason, reason) from exc

    async def _end_sessions(self, uuid: str, form: dict[str, str], ip: str) -> tuple[str, Any]:
        ended = await self.accounts.end_sessions(uuid, ENDED_BY_OPERATOR)
        return "end_sessions", {"sessions": ended}

    async def _reset_code(self, uuid: str, form: dict[str, str], ip: str) -> tuple[str, Any]:
        # A dth number's password is reset with its BOSS activation password, never a code.
        if await self.accounts.group(uuid) != COMMON:
            raise Problem("reset_code_common_only", 409, "not_common")
        # The apps' own path (caps per number, per address, per range; fraud's destinations):
        # the operator's address counts as the asking client's.
        try:
            await self.accounts.send_code(uuid, "resetpwd", ip)
        except Failed as exc:
            raise Problem("refused_by_service", 409, exc.reason, exc.reason) from exc
        except TooManyRequests as exc:
            raise Problem("too_many", 429, "too_many") from exc
        return "reset_code", {}

    async def _bind(self, uuid: str, form: dict[str, str], ip: str) -> tuple[str, Any]:
        try:
            number = action_forms.phone(form)
        except action_forms.FormError as exc:
            raise Problem("bad_input", 400, "invalid_params", str(exc)) from exc
        await self._bind_to(uuid, number)
        return "bind", {"phone": number}

    async def _unbind(self, uuid: str, form: dict[str, str], ip: str) -> tuple[str, Any]:
        await self._bind_to(uuid, None)
        return "unbind", {}

    async def _bind_to(self, uuid: str, number: str | None) -> None:
        try:
            await self.provisioning.bind(uuid, number)
        except NotProvisioned as exc:
            raise Problem("not_provisioned", 409, "not_provisioned") from exc
        except ValueError as exc:  # taken by another account, not a number, closed
            reason = getattr(exc, "reason", "invalid_params")
            raise Problem("refused_by_service", 409, reason, reason) from exc

    async def _credit(self, uuid: str, form: dict[str, str], ip: str) -> tuple[str, Any]:
        try:
            wanted = action_forms.credit(form)
        except action_forms.FormError as exc:
            raise Problem("bad_input", 400, "invalid_params", str(exc)) from exc
        amount = Balance(coins=wanted.coins_cents, minutes=wanted.minutes)
        applied, after = await operator.credit(
            self.billing, self.accounts, uuid, amount, CREDIT_REF_PREFIX + wanted.ref,
            wanted.note or None,
        )  # fmt: skip
        fields = {
            "ref": wanted.ref, "coins": coins_value(wanted.coins_cents),
            "minutes": wanted.minutes, "note": wanted.note or None, "applied": applied,
            "coins_after": coins_value(after.balance.coins),
        }  # fmt: skip
        return ("credit" if applied else "credit_again"), fields
