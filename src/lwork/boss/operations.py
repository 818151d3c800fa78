"""The operations of CONTRACT §9: each body's fields, and the one service call it makes.

Changes carry a ``request_id`` (kept by the endpoint); reads do not need one. A refusal raises
``Refusal`` with the reason the BOSS is answered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from lwork.accounts.provisioning import ProvisioningService
from lwork.accounts.service import AccountService
from lwork.billing import operator
from lwork.billing.rating import Balance, coins_value, to_cents
from lwork.billing.service import BillingService
from lwork.http.decode import too_deep
from lwork.payments.provider import ProviderUnavailable
from lwork.payments.refunds import RefundRefused
from lwork.payments.service import PaymentService

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
RequestId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Coins = Annotated[float, msgspec.Meta(ge=0, le=1_000_000)]
Minutes = Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]


class Refusal(Exception):
    def __init__(self, reason: str, status_code: int = 400, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.detail = detail

    def answer(self) -> dict[str, Any]:
        answer = {"status": "failed", "reason": self.reason}
        return answer if self.detail is None else answer | {"detail": self.detail}


class Body(msgspec.Struct, forbid_unknown_fields=True):
    """A BOSS request body: unknown fields are refused (a misspelt field is not ignored)."""


class OpenBody(Body):
    request_id: RequestId
    account: Text
    pwd: Password
    group: Literal["dth"] = "dth"


class AccountBody(Body):
    request_id: RequestId
    account: Text


class BindBody(Body):
    request_id: RequestId
    account: Text
    phone: Text


class UnbindBody(Body):
    request_id: RequestId
    account: Text
    phone: Text | None = None


class CreditBody(Body):
    request_id: RequestId
    account: Text
    ref: RequestId
    coins: Coins = 0.0
    minutes: Minutes = 0
    note: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class PackageBody(Body):
    request_id: RequestId
    account: Text
    minutes: Annotated[int, msgspec.Meta(gt=0, le=10_000_000)]
    """Minutes per period."""
    start: dt.date
    """The first period's first day, in ``billing.timezone``."""
    period: Literal["month"] = "month"
    periods: Annotated[int, msgspec.Meta(gt=0, le=operator.MAX_PERIODS)] = 1


class MinutesBody(Body):
    account: Text
    request_id: RequestId | None = None


class CdrsBody(Body):
    start: dt.date
    end: dt.date
    account: Text | None = None
    format: Literal["json", "csv"] = "json"
    request_id: RequestId | None = None


class OrdersBody(Body):
    start: dt.date
    end: dt.date
    account: Text | None = None
    state: Literal["created", "paid", "closed", "refunded", "flagged"] | None = None
    request_id: RequestId | None = None


class RefundBody(Body):
    request_id: RequestId
    payid: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    money: Annotated[float, msgspec.Meta(gt=0, le=10_000_000)] | None = None
    """Part of the price to give back, in yuan; the whole price when absent."""


@dataclass(frozen=True, slots=True)
class Operation:
    body: type[Body]
    changes: bool
    """Needs a ``request_id``, kept so a repeat answers the same and changes nothing."""


OPERATIONS: dict[str, Operation] = {
    "open": Operation(OpenBody, True),
    "activate": Operation(AccountBody, True),
    "deactivate": Operation(AccountBody, True),
    "close": Operation(AccountBody, True),
    "bind": Operation(BindBody, True),
    "unbind": Operation(UnbindBody, True),
    "credit": Operation(CreditBody, True),
    "package": Operation(PackageBody, True),
    "minutes": Operation(MinutesBody, False),
    "cdrs": Operation(CdrsBody, False),
    "orders": Operation(OrdersBody, False),
    "refund": Operation(RefundBody, True),
}


def parse(operation: str, raw: bytes) -> Body:
    """The body of ``operation``; Refusal says whether it is not JSON or which field is bad."""
    if too_deep(raw):
        raise Refusal("invalid_json")
    try:
        return msgspec.json.decode(raw, type=OPERATIONS[operation].body)
    except msgspec.ValidationError as exc:
        raise Refusal("invalid_params", detail=str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise Refusal("invalid_json") from exc


class BossOperations:
    """Every operation but ``cdrs`` (streamed by the endpoint), one service call each."""

    def __init__(
        self,
        provisioning: ProvisioningService,
        billing: BillingService,
        accounts: AccountService,
        wall: Callable[[], float],
        payments: PaymentService | None = None,
    ) -> None:
        self._provisioning = provisioning
        self._payments = payments
        self._billing = billing
        self._accounts = accounts
        self._wall = wall
        self._handlers: dict[str, Callable[[Any], Awaitable[dict[str, Any]]]] = {
            "open": self._open, "activate": self._activate, "deactivate": self._deactivate,
            "close": self._close, "bind": self._bind, "unbind": self._unbind,
            "credit": self._credit, "package": self._package, "minutes": self._minutes,
        }  # fmt: skip
        if payments is not None:
            self._handlers |= {"orders": self._orders, "refund": self._refund}

    async def run(self, operation: str, body: Body) -> dict[str, Any]:
        handler = self._handlers.get(operation)
        if handler is None:
            # orders, refund: where no payments were composed (a BOSS without payments).
            raise Refusal("not_available", 501)
        try:
            return await handler(body)
        except RefundRefused as exc:
            if exc.reason == "provider_unavailable":
                # Not a kept answer: the BOSS asks again with the same request_id later, and
                # the refund is asked again with the same refund number.
                raise ProviderUnavailable(exc.detail) from exc
            raise Refusal(exc.reason, 404 if exc.reason == "unknown_payid" else 400,
                          exc.detail or None) from exc  # fmt: skip
        except (LookupError, ValueError) as exc:
            raise Refusal(getattr(exc, "reason", "invalid_params")) from exc

    async def _open(self, body: OpenBody) -> dict[str, Any]:
        await self._provisioning.open(body.account, body.pwd, body.group, self._wall())
        return {"status": "ok", "account": body.account}

    async def _activate(self, body: AccountBody) -> dict[str, Any]:
        await self._provisioning.set_active(body.account, True)
        return {"status": "ok", "account": body.account}

    async def _deactivate(self, body: AccountBody) -> dict[str, Any]:
        await self._provisioning.set_active(body.account, False)
        return {"status": "ok", "account": body.account}

    async def _close(self, body: AccountBody) -> dict[str, Any]:
        await self._provisioning.close(body.account, self._wall())
        return {"status": "ok", "account": body.account}

    async def _bind(self, body: BindBody) -> dict[str, Any]:
        await self._provisioning.bind(body.account, body.phone)
        return {"status": "ok", "account": body.account, "phone": body.phone}

    async def _unbind(self, body: UnbindBody) -> dict[str, Any]:
        await self._provisioning.bind(body.account, None)
        return {"status": "ok", "account": body.account}

    async def _credit(self, body: CreditBody) -> dict[str, Any]:
        amount = Balance(coins=to_cents(body.coins), minutes=body.minutes)
        applied, after = await operator.credit(
            self._billing, self._accounts, body.account, amount, body.ref, body.note
        )
        return {"status": "ok", "account": after.uuid, "ref": body.ref, "applied": applied,
                **_balance(after)}  # fmt: skip

    async def _package(self, body: PackageBody) -> dict[str, Any]:
        # The request id is the grant's reference: granted once, even past the endpoint's
        # idempotency record.
        applied, after = await operator.package(
            self._billing, self._accounts, body.account, body.minutes, body.periods, body.start,
            body.request_id,
        )  # fmt: skip
        return {"status": "ok", "account": after.uuid, "applied": applied,
                "minutes": after.balance.minutes,
                "packages": await self._packages(after.uuid)}  # fmt: skip

    async def _minutes(self, body: MinutesBody) -> dict[str, Any]:
        after = await operator.standing(self._billing, self._accounts, body.account)
        return {"status": "ok", "account": after.uuid, "minutes": after.balance.minutes,
                "packages": await self._packages(after.uuid)}  # fmt: skip

    async def _packages(self, uuid: str) -> list[dict[str, Any]]:
        """Unexpired buckets, expiring first: ``expire`` is the last day one can be used
        (None: never expires); ``start`` its first."""
        return [
            {"minutes_left": bucket.minutes_left,
             "expire": None if bucket.expires_at is None
             else self._billing.last_day(bucket.expires_at),
             "start": self._billing.day(bucket.valid_from)}
            for bucket in await self._billing.packages(uuid)
        ]  # fmt: skip

    async def _orders(self, body: OrdersBody) -> dict[str, Any]:
        assert self._payments is not None
        uuid = None
        if body.account is not None:
            uuid = await operator.known_account(self._accounts, body.account)
        listed = await self._payments.orders(uuid, body.start, body.end, body.state)
        return {"status": "ok", **listed}

    async def _refund(self, body: RefundBody) -> dict[str, Any]:
        assert self._payments is not None
        fen = None if body.money is None else round(body.money * 100)
        done = await self._payments.refund(body.payid, fen, body.reason)
        return {"status": "ok", **done.answer()}


def _balance(after: operator.Standing) -> dict[str, Any]:
    return {"minutes": after.balance.minutes, "coins": coins_value(after.balance.coins),
            "gift_coins": coins_value(after.balance.gift_coins)}  # fmt: skip
