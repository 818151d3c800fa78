"""Alipay App Pay: the order string the Alipay SDK opens, signed RSA2 (SHA256withRSA) with the
application's key, and the asynchronous notification verified with Alipay's public key.

Both signatures cover the same canonical text: every parameter but ``sign`` (and, for a
notification, ``sign_type``) with a non-empty value, sorted by name, joined as ``k=v`` with
``&``, values as they are (not URL-encoded).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from lwork.payments.alipay_form import form_fields
from lwork.payments.alipay_gateway import Gateway, canonical
from lwork.payments.products import FEN
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
from lwork.settings.payments import AlipaySettings

BEIJING = ZoneInfo("Asia/Shanghai")
"""Alipay's timestamps are Beijing time, whatever ``billing.timezone`` is."""
PAID = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
SUCCESS = "10000"
RETRY_LATER = frozenset({"ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR", "isp.unknow-error"})
"""Errors Alipay documents as "ask again with the same numbers"."""
_PKCS1, _SHA256 = padding.PKCS1v15(), hashes.SHA256()
"""Built once: each notification's check is made with them."""
_ACCEPTED = Ack(200, b"success")
"""Every settled notification's answer, built once (a frozen dataclass sets each field through
``object.__setattr__``)."""


def load_public_key(text: str) -> rsa.RSAPublicKey:
    pem = text.strip()
    if not pem.startswith("-----BEGIN"):  # the console shows the bare Base64 of the DER
        pem = f"-----BEGIN PUBLIC KEY-----\n{pem}\n-----END PUBLIC KEY-----"
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("payments.alipay.alipay_public_key is not an RSA key")
    return key


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(text.strip().encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("payments.alipay.app_private_key is not an RSA key")
    return key


def _error(answer: dict[str, Any]) -> str:
    code, sub = answer.get("code", "?"), answer.get("sub_code", "")
    return f"{code} {sub} {answer.get('sub_msg') or answer.get('msg', '')}".strip()[:200]


def _yuan(fen: int) -> str:
    return f"{Decimal(fen) / FEN:.2f}"


def _fen(params: Mapping[str, str], field: str) -> Decimal:
    """A positive amount in yuan with at most two decimals, as fen."""
    try:
        fen = Decimal(params.get(field, "")) * FEN
    except ArithmeticError as exc:  # InvalidOperation, or Overflow for 1e999999999
        raise NotVerified(f"{field} is not a number") from exc
    if not fen.is_finite() or fen != fen.to_integral_value() or not 0 < fen < 10**12:
        raise NotVerified(f"{field} is not a positive amount in yuan")
    return fen


def _refunds_anything(params: Mapping[str, str]) -> bool:
    """The notification carries a refund_fee that is not zero: a payment's own notification
    may carry ``refund_fee=0.00`` (nothing refunded), which refused as "not a positive amount"
    would have Alipay send it, and our refusal, until it gives up."""
    text = params.get("refund_fee", "")
    if not text:
        return False
    try:
        return bool(Decimal(text) != 0)
    except ArithmeticError:  # not a number: _fen refuses it with its reason
        return True


def _refund_name(params: Mapping[str, str], trade_no: str, refunded: Decimal) -> str:
    """The refund's out_biz_no; without one (a console refund may carry none), the trade and
    what it had refunded in all with this refund (``<trade_no>/<fen>``): the same for every
    repeat of its notice, another for each further refund of the trade. Never the bare trade
    number, which names the payment and every one of its refunds alike: a second partial
    refund named so was taken for a repeat of the first and nothing was taken back."""
    biz_no = params.get("out_biz_no", "")
    return biz_no[:64] if biz_no else f"{trade_no[:48]}/{int(refunded)}"


class AlipayProvider:
    name = "alipay"

    def __init__(self, settings: AlipaySettings) -> None:
        self._settings = settings
        self._private = load_private_key(settings.app_private_key.get_secret_value())
        self._public = load_public_key(settings.alipay_public_key)
        self._gateway = Gateway(settings, self._private, self._public)

    async def create(self, order: NewOrder) -> dict[str, Any]:
        expire = dt.datetime.fromtimestamp(order.expires_at, BEIJING)
        biz = {
            "out_trade_no": order.payid,
            "total_amount": _yuan(order.money_fen),
            "subject": order.subject,
            "product_code": "QUICK_MSECURITY_PAY",
            "time_expire": expire.strftime("%Y-%m-%d %H:%M:%S"),
        }
        params = {
            "app_id": self._settings.app_id,
            "method": "alipay.trade.app.pay",
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": dt.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "notify_url": self._settings.notify_url,
            "biz_content": json.dumps(biz, separators=(",", ":"), ensure_ascii=False),
        }
        signature = self._private.sign(canonical(params), padding.PKCS1v15(), hashes.SHA256())
        params["sign"] = base64.b64encode(signature).decode()
        return {"alipay_order": "&".join(f"{k}={quote_plus(v)}" for k, v in params.items())}

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Notice | RefundNotice:
        try:
            params = form_fields(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise NotVerified("not a UTF-8 form") from exc
        if params.get("sign_type", "RSA2") != "RSA2":
            raise NotVerified(f"sign_type {params.get('sign_type')!r} is not RSA2")
        try:
            # binascii's own strict check (base64.b64decode's validate=True is a regular
            # expression first); ValueError too: a sign of characters that are not ASCII.
            signature = binascii.a2b_base64(params.get("sign", ""), strict_mode=True)
            self._public.verify(signature, canonical(params, "sign", "sign_type"), _PKCS1,
                                _SHA256)  # fmt: skip
        except (InvalidSignature, ValueError) as exc:
            raise NotVerified("bad or missing sign") from exc
        return self._notice(params)

    def _notice(self, params: dict[str, str]) -> Notice | RefundNotice:
        payid, trade_no = params.get("out_trade_no", ""), params.get("trade_no", "")
        if not (0 < len(payid) <= 32 and 0 < len(trade_no) <= 64):
            raise NotVerified("out_trade_no or trade_no missing or too long")
        fen = _fen(params, "total_amount")
        mismatch = None
        if params.get("app_id") != self._settings.app_id:
            mismatch = f"app_id {params.get('app_id')!r} is not ours"
        elif self._settings.seller_id and params.get("seller_id") != self._settings.seller_id:
            mismatch = f"seller_id {params.get('seller_id')!r} is not ours"
        status = params.get("trade_status", "")
        if _refunds_anything(params) and status in PAID | {"TRADE_CLOSED"} and mismatch is None:
            # A refund, ours or one made in Alipay's merchant console, is announced on the
            # payment's notify_url: the trade stays TRADE_SUCCESS after a partial refund and
            # becomes TRADE_CLOSED after a full one; refund_fee is all refunded so far (so a
            # second partial refund's share is what it adds) and out_biz_no, when there is one,
            # names the refund (our out_request_no, or the console's own number).
            refunded = _fen(params, "refund_fee")
            if refunded > fen:
                raise NotVerified("refund_fee is more than total_amount")
            return RefundNotice(payid, trade_no, (_refund_name(params, trade_no, refunded),),
                                int(refunded), cumulative=True)  # fmt: skip
        event: Literal["paid", "closed", "pending"]
        if status in PAID:
            event = "paid"
        elif status == "TRADE_CLOSED":
            event = "closed"
        else:
            event = "pending"  # WAIT_BUYER_PAY: nothing to do yet
        return Notice(payid, trade_no, int(fen), event, mismatch)

    async def query(self, payid: str) -> Notice | None:
        answer = await self._gateway.call("alipay.trade.query", {"out_trade_no": payid})
        if answer.get("code") != SUCCESS:
            if answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return None  # the buyer never opened it: Alipay has no trade yet
            raise ProviderUnavailable(_error(answer))
        fields = {k: str(v) for k, v in answer.items() if isinstance(v, (str, int, float))}
        # The query names no app or seller: those were checked when the order was opened.
        fields |= {"app_id": self._settings.app_id, "seller_id": self._settings.seller_id}
        fields.pop("refund_fee", None)  # a query tells of the payment; refunds come as notices
        try:
            notice = self._notice(fields)
        except NotVerified as exc:
            raise ProviderUnavailable(f"alipay.trade.query answered {exc.reason}") from exc
        assert isinstance(notice, Notice)  # without refund_fee it is the payment's
        return notice

    async def refund(self, request: RefundRequest) -> RefundResult:
        biz = {
            "out_trade_no": request.payid,
            "refund_amount": _yuan(request.money_fen),
            "out_request_no": request.refund_no,
            "refund_reason": request.reason[:256],
        }
        answer = await self._gateway.call("alipay.trade.refund", biz)
        if answer.get("code") == SUCCESS:
            # Alipay numbers no refund of its own: the answer's trade_no is the payment's,
            # shared by all its refunds, so the refund is known by our out_request_no alone.
            return RefundResult(request.refund_no, "", request.money_fen, "done")
        if answer.get("sub_code") in RETRY_LATER:
            raise ProviderUnavailable(_error(answer))
        return RefundResult(request.refund_no, "", request.money_fen, "failed", _error(answer))

    async def refund_state(self, payid: str, refund_no: str) -> RefundResult | None:
        """``alipay.trade.fastpay.refund.query``: its 10000 says only that the query worked;
        the refund happened when the answer names it with ``refund_status`` REFUND_SUCCESS,
        and did not (never received, or refused) when the status is missing. Asked only
        ``payments.reconcile_after_s`` after the refund, well past the seconds Alipay says a
        refund it received may take to show here."""
        biz = {"out_trade_no": payid, "out_request_no": refund_no}
        answer = await self._gateway.call("alipay.trade.fastpay.refund.query", biz)
        if answer.get("code") != SUCCESS:
            if answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
                return None  # no such payment: none of its refunds happened either
            # Retry-later errors, and any other we cannot read as "no refund": asked again
            # next round rather than taken for a refund that never happened.
            raise ProviderUnavailable(_error(answer))
        status = answer.get("refund_status")
        if status is None:
            return None
        named = answer.get("out_request_no"), answer.get("out_trade_no")
        if named[0] not in (None, refund_no) or named[1] not in (None, payid):
            raise ProviderUnavailable(f"refund query for {refund_no} answered {named}")
        if status != "REFUND_SUCCESS":  # none other is documented: ask again later
            return RefundResult(refund_no, "", 0, "pending")
        try:
            money = _fen({"refund_amount": str(answer.get("refund_amount", ""))}, "refund_amount")
        except NotVerified as exc:
            raise ProviderUnavailable(f"refund query answered {exc.reason}") from exc
        return RefundResult(refund_no, "", int(money), "done")

    def accepted(self) -> Ack:
        return _ACCEPTED

    def refused(self, status: int) -> Ack:
        return Ack(status, b"failure")
