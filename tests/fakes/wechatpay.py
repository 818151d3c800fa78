"""A fake WeChat Pay API v3, as its documentation describes App payments, on a loopback
socket. It checks the merchant's signature on every request (``Authorization:
WECHATPAY2-SHA256-RSA2048 …``) with the merchant's public key, signs every reply with its
platform key (``Wechatpay-Serial/-Timestamp/-Nonce/-Signature``), opens App orders
(``prepay_id``), answers queries by ``out_trade_no`` in each documented ``trade_state``
(``SUCCESS``, ``NOTPAY``, ``USERPAYING``, ``CLOSED``, ...), takes refunds by ``out_refund_no``
(a repeat refunds nothing more and answers the refund as it stands: ``SUCCESS`` or, as for
most real refunds, ``PROCESSING`` until it ends ``SUCCESS``, ``ABNORMAL`` or ``CLOSED`` with
a ``REFUND.*`` notification) and answers a refund's query by ``out_refund_no``, and posts
notifications whose resource is AEAD_AES_256_GCM-encrypted with the API v3 key, sending each
again until acknowledged with 200 or 204. It plays the documented errors: ``SYSTEM_ERROR``
(500), ``ORDER_NOT_EXIST`` (404), a forged reply.

The signature layouts below are written from the documentation, not imported from lwork."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fakes.alipay import new_key, private_pem

__all__ = ["FakeWechatPay", "new_key", "private_pem", "public_pem"]

APP_ID, MCH_ID = "wx8888888888888888", "1900000109"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PLATFORM_SERIAL = "PUB_KEY_ID_0114232134912410000000000000"


def public_pem(key: rsa.RSAPrivateKey) -> str:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(serialization.Encoding.PEM, spki).decode()


def _sign(key: rsa.RSAPrivateKey, text: bytes) -> str:
    return base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()


class FakeWechatPay:
    def __init__(self, merchant_key: rsa.RSAPublicKey, api_v3_key: bytes) -> None:
        self.key = new_key()
        """The platform key (its public half goes into the server's settings)."""
        self._merchant = merchant_key
        self.api_v3_key = api_v3_key
        self.orders: dict[str, dict[str, Any]] = {}
        """Opened App orders by out_trade_no (the request body)."""
        self.transactions: dict[str, dict[str, Any]] = {}
        """Paid (or closed) transactions by out_trade_no."""
        self.refunds: dict[str, dict[str, Any]] = {}
        """Refunds by out_refund_no, as the refund API answers them."""
        self.refund_requests: list[dict[str, Any]] = []
        self.lose_refund_answers = False
        """Take a refund, then answer 500 as if the answer were lost on the way."""
        self.refund_status = "SUCCESS"
        """How a new refund is answered: ``SUCCESS``, or ``PROCESSING`` (the money moves
        later, and ``finish_refund`` tells of it)."""
        self.system_error = False
        self.forge_replies = False
        self.requests: list[str] = []
        self.attempts: list[httpx.Response] = []

    # what the server calls

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            body = await request.body()
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            self._check_merchant(request.method, path, body, request.headers["authorization"])
            self.requests.append(f"{request.method} {request.url.path}")
            if self.system_error:
                return self._reply(500, {"code": "SYSTEM_ERROR", "message": "系统错误"})
            if request.url.path == "/v3/pay/transactions/app":
                order = json.loads(body)
                assert (order["appid"], order["mchid"]) == (APP_ID, MCH_ID)
                self.orders[order["out_trade_no"]] = order
                return self._reply(200, {"prepay_id": "wx" + secrets.token_hex(14)})
            if request.url.path.startswith("/v3/pay/transactions/out-trade-no/"):
                assert request.query_params["mchid"] == MCH_ID
                found = self.transactions.get(request.url.path.rsplit("/", 1)[1])
                if found is None:
                    return self._reply(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
                return self._reply(200, found)
            if request.url.path == "/v3/refund/domestic/refunds":
                return self._refund(json.loads(body))
            if request.url.path.startswith("/v3/refund/domestic/refunds/"):
                refund = self.refunds.get(request.url.path.rsplit("/", 1)[1])
                if refund is None:
                    gone = {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"}
                    return self._reply(404, gone)
                return self._reply(200, refund)
            return self._reply(404, {"code": "NOT_FOUND", "message": "no such API"})

        return Starlette(routes=[Route("/{path:path}", handle, methods=["GET", "POST"])])

    def _check_merchant(self, method: str, path: str, body: bytes, header: str) -> None:
        schema, _, rest = header.partition(" ")
        assert schema == "WECHATPAY2-SHA256-RSA2048", header
        fields = dict(part.split("=", 1) for part in rest.split(","))
        fields = {k.strip(): v.strip('"') for k, v in fields.items()}
        assert (fields["mchid"], fields["serial_no"]) == (MCH_ID, MERCHANT_SERIAL)
        text = f"{method}\n{path}\n{fields['timestamp']}\n{fields['nonce_str']}\n".encode()
        self._merchant.verify(base64.b64decode(fields["signature"]), text + body + b"\n",
                              padding.PKCS1v15(), hashes.SHA256())  # fmt: skip

    def _refund(self, request: dict[str, Any]) -> Response:
        self.refund_requests.append(request)
        paid = self.transactions.get(request["out_trade_no"])
        if paid is None or paid["trade_state"] != "SUCCESS":
            return self._reply(404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"})
        no = request["out_refund_no"]
        if no not in self.refunds:
            # A CLOSED refund gave nothing back; an ABNORMAL one still holds its money (the
            # merchant retries it through WeChat's abnormal-refund API, not a new refund).
            given = sum(r["amount"]["refund"] for r in self.refunds.values()
                        if r["out_trade_no"] == request["out_trade_no"]
                        and r["status"] != "CLOSED")  # fmt: skip
            if given + request["amount"]["refund"] > paid["amount"]["total"]:
                return self._reply(400, {"code": "INVALID_REQUEST", "message": "超过可退金额"})
            self.refunds[no] = {
                "refund_id": "5030" + secrets.token_hex(12), "out_refund_no": no,
                "transaction_id": paid["transaction_id"], "out_trade_no": request["out_trade_no"],
                "status": self.refund_status, "amount": request["amount"],
            }  # fmt: skip
        if self.lose_refund_answers:
            return self._reply(500, {"code": "SYSTEM_ERROR", "message": "系统错误"})
        return self._reply(200, self.refunds[no])

    def finish_refund(self, out_refund_no: str, status: str = "SUCCESS") -> bytes:
        """A refund answered PROCESSING ends (``SUCCESS``, ``ABNORMAL``, ``CLOSED``): its
        state changes and WeChat's ``REFUND.<status>`` notification is returned to be posted."""
        refund = self.refunds[out_refund_no]
        refund["status"] = status
        paid = self.transactions[refund["out_trade_no"]]
        amount = refund["amount"]
        return self.notification({
            "mchid": MCH_ID, "out_trade_no": refund["out_trade_no"],
            "transaction_id": paid["transaction_id"], "out_refund_no": out_refund_no,
            "refund_id": refund["refund_id"], "refund_status": status,
            "success_time": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
            "user_received_account": "支付用户零钱",
            "amount": {"total": amount["total"], "refund": amount["refund"],
                       "payer_total": amount["total"], "payer_refund": amount["refund"]},
        }, event=f"REFUND.{status}")  # fmt: skip

    def _reply(self, status: int, answer: dict[str, Any]) -> Response:
        body = json.dumps(answer, ensure_ascii=False).encode()
        return Response(body, status, headers=self.signed_headers(body),
                        media_type="application/json")  # fmt: skip

    def signed_headers(self, body: bytes, *, at: float | None = None,
                       serial: str = PLATFORM_SERIAL) -> dict[str, str]:  # fmt: skip
        timestamp, nonce = str(int(time.time() if at is None else at)), secrets.token_hex(16)
        key = new_key() if self.forge_replies else self.key
        signature = _sign(key, f"{timestamp}\n{nonce}\n".encode() + body + b"\n")
        return {"Wechatpay-Serial": serial, "Wechatpay-Timestamp": timestamp,
                "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature}  # fmt: skip

    # what the buyer and WeChat do

    def pay(self, payid: str, state: str = "SUCCESS", **override: Any) -> dict[str, Any]:
        """The buyer pays the opened order (or it reaches ``state``: ``NOTPAY`` and
        ``USERPAYING`` name no transaction yet, ``CLOSED`` none ever)."""
        order = self.orders[payid]
        transaction: dict[str, Any] = {
            "appid": APP_ID, "mchid": MCH_ID, "out_trade_no": payid,
            "transaction_id": "4200" + secrets.token_hex(12), "trade_type": "APP",
            "trade_state": state, "trade_state_desc": "支付成功", "bank_type": "OTHERS",
            "success_time": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
            "amount": {"total": order["amount"]["total"], "payer_total": order["amount"]["total"],
                       "currency": "CNY", "payer_currency": "CNY"},
        }  # fmt: skip
        if state != "SUCCESS":
            for paid_only in ("transaction_id", "success_time", "payer", "bank_type"):
                del transaction[paid_only]
            transaction["trade_state_desc"] = {
                "NOTPAY": "订单未支付", "USERPAYING": "用户支付中", "CLOSED": "订单已关闭",
            }.get(state, state)  # fmt: skip
        transaction.update(override)
        self.transactions[payid] = transaction
        return transaction

    def notification(self, transaction: dict[str, Any], event: str = "TRANSACTION.SUCCESS",
                     key: bytes | None = None) -> bytes:  # fmt: skip
        nonce = secrets.token_hex(6)  # 12 bytes, as WeChat's
        kind = "refund" if event.startswith("REFUND.") else "transaction"
        sealed = AESGCM(key or self.api_v3_key).encrypt(
            nonce.encode(), json.dumps(transaction).encode(), kind.encode()
        )
        return json.dumps({
            "id": secrets.token_hex(18), "create_time": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
            "resource_type": "encrypt-resource", "event_type": event, "summary": "支付成功",
            "resource": {"original_type": kind, "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": base64.b64encode(sealed).decode(),
                         "associated_data": kind, "nonce": nonce},
        }).encode()  # fmt: skip

    async def post(self, url: str, body: bytes, headers: dict[str, str] | None = None,
                   tries: int = 3) -> httpx.Response:  # fmt: skip
        """Post until acknowledged with 200/204 (WeChat retries for a day; we, briefly)."""
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(tries):
                signed = headers or self.signed_headers(body)
                sent = {**signed, "Content-Type": "application/json"}
                r = await client.post(url, content=body, headers=sent)
                self.attempts.append(r)
                if r.status_code in (200, 204):
                    break
        return r
