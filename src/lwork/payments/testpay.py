"""The ``test`` provider, for staging: notifications are JSON ``{payid, money, trade_no}``
signed with HMAC-SHA256 under ``payments.test.secret`` (hex in ``X-Lwork-Signature``)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from lwork.payments.products import FEN
from lwork.payments.provider import (
    Ack,
    NewOrder,
    Notice,
    NotSupported,
    NotVerified,
    RefundRequest,
    RefundResult,
)

SIGNATURE_HEADER = "x-lwork-signature"


def sign(secret: bytes, body: bytes) -> str:
    # hmac.digest: OpenSSL's one-shot HMAC, without hmac.new's object built in Python.
    return hmac.digest(secret, body, hashlib.sha256).hex()


class _TestNotice(msgspec.Struct):
    payid: str
    money: str | int | float
    trade_no: str


class TestPayProvider:
    __test__ = False  # not a pytest test class, whatever its name
    name = "test"

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    async def create(self, order: NewOrder) -> dict[str, Any]:
        return {}  # the tester pays by sending the signed notification itself

    def verify(self, body: bytes, headers: Mapping[str, str]) -> Notice:
        given = headers.get(SIGNATURE_HEADER, "")
        if not hmac.compare_digest(given.encode(), sign(self._secret, body).encode()):
            raise NotVerified("bad or missing X-Lwork-Signature")
        try:
            notice = msgspec.json.decode(body, type=_TestNotice)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise NotVerified(f"malformed notification: {exc}") from exc
        if not (0 < len(notice.trade_no) <= 64 and 0 < len(notice.payid) <= 32):
            raise NotVerified("payid or trade_no empty or too long")
        try:
            fen = Decimal(str(notice.money)) * FEN
            if fen != fen.to_integral_value() or not 0 < fen < 10**12:
                raise NotVerified("money is not a positive amount in yuan with two decimals")
        except ArithmeticError as exc:  # not a number, or one too large for any context
            raise NotVerified("money is not a number") from exc
        return Notice(notice.payid, notice.trade_no, int(fen), "paid")

    async def query(self, payid: str) -> Notice | None:
        return None  # the tester's notifications are all it ever hears: nothing to ask

    async def refund(self, request: RefundRequest) -> RefundResult:
        # No money moved, so none moves back: the refund is done as soon as it is asked.
        return RefundResult(request.refund_no, request.refund_no, request.money_fen, "done")

    async def refund_state(self, payid: str, refund_no: str) -> RefundResult | None:
        raise NotSupported("refunds here are done or refused when asked, never left pending")

    def accepted(self) -> Ack:
        return Ack(200, b"success")

    def refused(self, status: int) -> Ack:
        return Ack(status, b"failure")
