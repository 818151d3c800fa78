"""Coin endpoints (CONTRACT §8): the balance an app shows its user."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta, Struct

from lwork.accounts.authorization import POLL, Proof
from lwork.accounts.service import AccountService
from lwork.billing.service import MINUTES_GROUPS, BillingService
from lwork.errors import Failed
from lwork.http.request import ApiRequest
from lwork.http.routing import Reply, Route


class GetCoinRequest(Struct):
    uuid: Annotated[str, Meta(min_length=1, max_length=80)]
    device_id: Annotated[str, Meta(max_length=128)] | None = None
    token: Annotated[str, Meta(max_length=128)] | None = None


class CoinResponse(Struct, kw_only=True):
    status: str = "ok"
    coins: int | float
    gift_coins: int | float
    month_consumed: int | float
    minutes: int | msgspec.UnsetType = msgspec.UNSET
    """``dth`` accounts: package minutes usable now."""
    minutes_expire: str | msgspec.UnsetType = msgspec.UNSET
    """``dth`` accounts: ``YYYY-MM-DD``, the last day of the first of them to expire ("" when
    none expires)."""


class BillingApi:
    def __init__(self, billing: BillingService, accounts: AccountService) -> None:
        self._billing = billing
        self._accounts = accounts

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/lwork/mobile/get_coin", self.get_coin, GetCoinRequest, CoinResponse,
                  summary="coins, gift coins, this month's spending (dth: package minutes) of "
                  "the caller's account"),
        ]  # fmt: skip

    async def get_coin(self, req: ApiRequest) -> Reply:
        body = req.parse(GetCoinRequest)
        if not await self._accounts.registered(body.uuid):  # provisioned is not registered
            raise Failed("register_uuid_not_existed")
        # Balances are private: only the account's own live session may read one.
        proof = Proof(req.bearer or body.token, body.device_id, req.client_ip)
        session = await self._accounts.authorize(body.uuid, proof, POLL)
        coins, gift_coins, month_consumed = await self._billing.coins(session.uuid)
        answer = CoinResponse(coins=coins, gift_coins=gift_coins, month_consumed=month_consumed)
        if await self._accounts.group(session.uuid) in MINUTES_GROUPS:
            answer.minutes, answer.minutes_expire = await self._billing.minutes(session.uuid)
        return answer
