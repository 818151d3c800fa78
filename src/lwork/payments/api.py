"""The app's payment endpoints (CONTRACT §8): ``get_payid`` and ``get_recharges``."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from msgspec import Meta, Struct

from lwork.accounts.authorization import DEVICE_AND_POLL, Proof
from lwork.accounts.service import AccountService
from lwork.errors import Failed, InvalidParams
from lwork.http.request import ApiRequest
from lwork.http.routing import Reply, Route
from lwork.payments.service import PaymentService

Amount = str | float | None
"""Apps send prices as numbers or strings (``30``, ``"30.00"``)."""


class GetPayidRequest(Struct):
    uuid: Annotated[str, Meta(min_length=1, max_length=80)]
    device_id: Annotated[str, Meta(max_length=128)] | None = None
    money: Amount = None
    coins: Amount = None
    pay_type: Annotated[str, Meta(max_length=16)] = "alipay"
    product_id: Annotated[str, Meta(max_length=64)] | None = None
    token: Annotated[str, Meta(max_length=128)] | None = None


class GetRechargesRequest(Struct):
    uuid: Annotated[str, Meta(min_length=1, max_length=80)]
    device_id: Annotated[str, Meta(max_length=128)] | None = None
    token: Annotated[str, Meta(max_length=128)] | None = None


class PayAppleRequest(Struct):
    uuid: Annotated[str, Meta(min_length=1, max_length=80)]
    payid: Annotated[str, Meta(min_length=1, max_length=32)]
    signed_transaction: Annotated[str, Meta(min_length=1, max_length=60_000)]
    device_id: Annotated[str, Meta(max_length=128)] | None = None
    token: Annotated[str, Meta(max_length=128)] | None = None


class PayAppleResponse(Struct, kw_only=True):
    status: str = "ok"
    coins: int | float | None = None
    minutes: int | None = None


class PayidResponse(Struct, kw_only=True):
    status: str = "ok"
    payid: str
    uuid: str


class RechargesResponse(Struct, kw_only=True):
    status: str = "ok"
    recharges: list[dict[str, Any]]


class PaymentApi:
    def __init__(self, payments: PaymentService, accounts: AccountService) -> None:
        self._payments = payments
        self._accounts = accounts

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/lwork/mobile/get_payid", self.get_payid, GetPayidRequest,
                  PayidResponse, summary="open an order for a catalogue product"),
            Route("POST", "/lwork/mobile/pay/apple", self.pay_apple, PayAppleRequest,
                  PayAppleResponse, summary="credit an order with a StoreKit 2 transaction"),
            Route("POST", "/lwork/mobile/get_recharges", self.get_recharges,
                  GetRechargesRequest, RechargesResponse,
                  summary="the caller's paid orders, oldest first"),
        ]  # fmt: skip

    async def get_payid(self, req: ApiRequest) -> Reply:
        body = req.parse(GetPayidRequest)
        group = await self._accounts.group(body.uuid)
        if group is None:
            raise Failed("account_not_existed")
        # An order spends money (and recharges are private): without the login token, only
        # the account's own device, from where it polls, may ask (CONTRACT §3).
        proof = Proof(req.bearer or body.token, body.device_id, req.client_ip)
        session = await self._accounts.authorize(body.uuid, proof, DEVICE_AND_POLL)
        product = self._payments.product(
            group, body.product_id, _amount("money", body.money), _amount("coins", body.coins)
        )
        opened = await self._payments.open_order(session.uuid, body.uuid, product, body.pay_type)
        return {"status": "ok", "payid": opened.pop("payid"), "uuid": body.uuid, **opened}

    async def pay_apple(self, req: ApiRequest) -> Reply:
        body = req.parse(PayAppleRequest)
        proof = Proof(req.bearer or body.token, body.device_id, req.client_ip)
        session = await self._accounts.authorize(body.uuid, proof, DEVICE_AND_POLL)
        return await self._payments.apple_purchase(session.uuid, body.payid,
                                                   body.signed_transaction)  # fmt: skip

    async def get_recharges(self, req: ApiRequest) -> Reply:
        body = req.parse(GetRechargesRequest)
        if not await self._accounts.registered(body.uuid):
            raise Failed("register_uuid_not_existed")
        proof = Proof(req.bearer or body.token, body.device_id, req.client_ip)
        session = await self._accounts.authorize(body.uuid, proof, DEVICE_AND_POLL)
        return RechargesResponse(recharges=await self._payments.recharges(session.uuid))


def _amount(field: str, value: Amount) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise InvalidParams(field, f"{field} is not a number") from exc
    if not amount.is_finite() or abs(amount) > 10**9:
        raise InvalidParams(field, f"{field} is not a plausible amount")
    return amount
