"""WeChat Pay API v3, App payments: the order opened at ``/v3/pay/transactions/app`` and the
parameters the WeChat SDK needs, signed by the server; notifications verified (platform key by
serial, timestamp window) and decrypted (AEAD_AES_256_GCM, API v3 key); query by
``out_trade_no``; refunds through ``/v3/refund/domestic/refunds``.

Written on ``cryptography`` and ``httpx`` rather than the ``wechatpayv3`` SDK: the SDK is
synchronous (requests), would block the event loop or need a thread per call, and hides the
very checks this service must show it makes (which serial signed, how old a timestamp may be);
what it would save is the four message layouts in ``wechat_signing``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Literal

import msgspec

from lwork.payments.provider import (
    Ack,
    NewOrder,
    Notice,
    NotVerified,
    ProviderUnavailable,
    RefundNotice,
    RefundRequest,
    RefundResult,
)
from lwork.payments.wechat_gateway import WechatGateway, check_signed
from lwork.payments.wechat_signing import (
    BadSignature,
    app_pay_message,
    decrypt,
    load_private_key,
    load_public_keys,
    sign,
)
from lwork.settings.payments import WechatSettings

BEIJING = dt.timezone(dt.timedelta(hours=8))
PAID = frozenset({"SUCCESS"})
CLOSED = frozenset({"CLOSED", "REVOKED", "PAYERROR"})
CURRENCY = "CNY"
REFUND_STATES: dict[str, Literal["done", "pending", "failed"]] = {
    "SUCCESS": "done", "PROCESSING": "pending", "CLOSED": "failed", "ABNORMAL": "failed",
}  # fmt: skip


REFUSALS = {
    400: "notification not verified", 404: "no such order", 409: "settled by another order",
    413: "body too large", 503: "temporarily unavailable, send it again",
}  # fmt: skip


def _json_fail(message: str) -> bytes:
    return json.dumps({"code": "FAIL", "message": message}).encode()


class WechatProvider:
    name = "wechat"

    def __init__(self, settings: WechatSettings, wall: Callable[[], float]) -> None:
        self._settings = settings
        self._wall = wall
        self._private = load_private_key(settings.merchant_key_pem())
        self._platform = load_public_keys(settings.platform_pems())
        self._api_v3_key = settings.api_v3_key.get_secret_value().encode()
        self._gateway = WechatGateway(settings, self._private, self._platform, wall)

    async def create(self, order: NewOrder) -> dict[str, Any]:
        settings = self._settings
        expire = dt.datetime.fromtimestamp(order.expires_at, BEIJING).isoformat(timespec="seconds")
        reply = await self._gateway.call("POST", "/v3/pay/transactions/app", {
            "appid": settings.app_id, "mchid": settings.mch_id, "description": order.subject,
            "out_trade_no": order.payid, "time_expire": expire, "notify_url": settings.notify_url,
            "amount": {"total": order.money_fen, "currency": CURRENCY},
        })  # fmt: skip
        prepay_id = reply.body.get("prepay_id")
        if reply.status != 200 or not isinstance(prepay_id, str) or not prepay_id:
            raise ProviderUnavailable(f"no prepay_id: HTTP {reply.status} {reply.body.get('code')}")
        nonce, timestamp = secrets.token_hex(16), str(int(self._wall()))
        return {"wechat": {
            "appid": settings.app_id, "partnerid": settings.mch_id, "prepayid": prepay_id,
            "package": "Sign=WXPay", "noncestr": nonce, "timestamp": timestamp,
            "sign": sign(self._private, app_pay_message(settings.app_id, timestamp, nonce,
                                                        prepay_id)),
        }}  # fmt: skip

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Notice | RefundNotice:
        try:
            check_signed(self._platform, headers, body, self._wall(),
                         self._settings.timestamp_window_s)  # fmt: skip
            # msgspec: a third of what json.loads cost for the envelope and the transaction.
            envelope = msgspec.json.decode(body)
            if not isinstance(envelope, dict) or not isinstance(envelope.get("resource"), dict):
                raise NotVerified("notification without a resource")
            transaction = msgspec.json.decode(decrypt(self._api_v3_key, envelope["resource"]))
        except BadSignature as exc:
            raise NotVerified(str(exc)) from exc
        except (msgspec.DecodeError, ValueError, RecursionError) as exc:  # bad JSON, either
            raise NotVerified("notification is not JSON") from exc
        if not isinstance(transaction, dict):
            raise NotVerified("resource is not a transaction")
        event_type = str(envelope.get("event_type", ""))
        if event_type.startswith("REFUND."):
            # SUCCESS: the money went back; ABNORMAL (the buyer's account could not take it)
            # and CLOSED: it did not, and the credit stays.
            return _refund_notice(transaction, succeeded=event_type == "REFUND.SUCCESS")
        if not event_type.startswith("TRANSACTION."):
            return Notice("", "", 0, "pending")  # news of nothing we keep: acknowledged
        return self._notice(transaction)

    def _notice(self, transaction: dict[str, Any]) -> Notice:
        payid = _text(transaction, "out_trade_no", 32)
        state = transaction.get("trade_state")
        state = state if isinstance(state, str) else ""  # a list or object here is no state
        event: Literal["paid", "closed", "pending"]
        event = "paid" if state in PAID else "closed" if state in CLOSED else "pending"
        amount = transaction.get("amount")
        amount = amount if isinstance(amount, dict) else {}
        total = _fen(amount.get("total"))
        if event != "paid":
            # An unpaid or closed order's answer may name no amount: nothing is credited from
            # it, and refusing it would keep the order waiting for ever.
            return Notice(payid, "", total or 0, event)
        if total is None:
            raise NotVerified("amount.total is not a positive number of fen")
        trade_no = transaction.get("transaction_id")
        if not (isinstance(trade_no, str) and 0 < len(trade_no) <= 64):
            raise NotVerified("a paid transaction without transaction_id")
        mismatch = None
        if transaction.get("mchid") != self._settings.mch_id:
            mismatch = f"mchid {transaction.get('mchid')!r} is not ours"
        elif transaction.get("appid") != self._settings.app_id:
            mismatch = f"appid {transaction.get('appid')!r} is not ours"
        elif amount.get("currency") != CURRENCY:
            # Orders are opened in fen of CNY: 3000 of another currency is another price.
            mismatch = f"amount.currency {str(amount.get('currency'))[:8]!r} is not {CURRENCY}"
        return Notice(payid, trade_no, total, event, mismatch)

    async def query(self, payid: str) -> Notice | None:
        path = f"/v3/pay/transactions/out-trade-no/{payid}?mchid={self._settings.mch_id}"
        reply = await self._gateway.call("GET", path)
        if reply.status == 404 or reply.body.get("code") == "ORDER_NOT_EXIST":
            return None
        if reply.status != 200:
            raise ProviderUnavailable(f"query: HTTP {reply.status} {reply.body.get('code')}")
        try:
            notice = self._notice(reply.body)
        except NotVerified as exc:
            raise ProviderUnavailable(f"query answered {exc.reason}") from exc
        if notice.payid != payid:  # an answer about another order settles nothing
            raise ProviderUnavailable(f"query for {payid} answered {notice.payid}")
        return notice

    async def refund(self, request: RefundRequest) -> RefundResult:
        reply = await self._gateway.call("POST", "/v3/refund/domestic/refunds", {
            "out_trade_no": request.payid, "out_refund_no": request.refund_no,
            "reason": request.reason[:80], "notify_url": self._settings.notify_url,
            "amount": {"refund": request.money_fen, "total": request.total_fen,
                       "currency": CURRENCY},
        })  # fmt: skip
        if reply.status == 200:
            state = REFUND_STATES.get(str(reply.body.get("status")), "pending")
            return RefundResult(request.refund_no, str(reply.body.get("refund_id", "")),
                                request.money_fen, state)  # fmt: skip
        reason = f"{reply.body.get('code')} {reply.body.get('message', '')}".strip()[:200]
        return RefundResult(request.refund_no, "", request.money_fen, "failed", reason)

    async def refund_state(self, payid: str, refund_no: str) -> RefundResult | None:
        reply = await self._gateway.call("GET", f"/v3/refund/domestic/refunds/{refund_no}")
        if reply.status == 404:
            return None
        if reply.status != 200:
            raise ProviderUnavailable(f"refund query: HTTP {reply.status} {reply.body.get('code')}")
        amount = reply.body.get("amount")
        money = _fen(amount.get("refund") if isinstance(amount, dict) else None)
        if reply.body.get("out_refund_no") != refund_no or money is None:
            raise ProviderUnavailable(f"refund query for {refund_no} answered another refund")
        state = REFUND_STATES.get(str(reply.body.get("status")), "pending")
        reason = "" if state != "failed" else f"refund {reply.body.get('status')}"
        return RefundResult(refund_no, str(reply.body.get("refund_id", ""))[:64], money, state,
                            reason)  # fmt: skip

    def accepted(self) -> Ack:
        return Ack(204, b"")

    def refused(self, status: int) -> Ack:
        # WeChat Pay resends what it did not see answered 200/204; the message is for its logs.
        return Ack(status, _json_fail(REFUSALS.get(status, "not accepted")), "application/json")


def _refund_notice(refund: dict[str, Any], succeeded: bool) -> RefundNotice:
    """Money given back, or not: by a refund of ours (``out_refund_no`` is our number, and a
    refund WeChat answered PROCESSING waits for this) or by one made in the merchant platform
    (a number of WeChat's), whose credit is taken back now, once."""
    amount = refund.get("amount")
    money = _fen(amount.get("refund") if isinstance(amount, dict) else None)
    if money is None:
        raise NotVerified("amount.refund is not a positive number of fen")
    numbers = (_text(refund, "out_refund_no", 64), _text(refund, "refund_id", 64))
    return RefundNotice(_text(refund, "out_trade_no", 32), "", numbers, money,
                        succeeded=succeeded)  # fmt: skip


def _fen(value: object) -> int | None:
    """A positive whole number of fen (JSON's true is no number), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**12:
        return value
    return None


def _text(fields: dict[str, Any], name: str, longest: int) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= longest:
        raise NotVerified(f"{name} missing or too long")
    return value
