"""A loopback Tencent Cloud SMS API (``SendSms``, 2021-01-11) written from Tencent's public
documentation, not from lwork's code.

It checks requests as the real service does: the ``TC3-HMAC-SHA256`` signature, recomputed here
from the documented algorithm (canonical request, credential scope ``date/sms/tc3_request``,
derived key); a known SecretId; ``X-TC-Timestamp`` within 5 minutes of now and matching the
scope's date; the action and version. Request-level failures come back as ``{"Response":
{"Error": {"Code": ...}}}`` with HTTP 200, per-number ones as the number's ``Code`` in
``SendStatusSet``. Tests queue failures in ``fail_next`` (``"error:<Code>"`` or
``"status:<Code>"``), make it hang, or make it answer garbage."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SECRET_ID = "AKID-tencent-test-id"
SECRET_KEY = "tencent-test-secret-do-not-log"
SDK_APP_ID = "1400000001"
SIGN_NAME = "lwork"
TEMPLATE_ID = "449739"
_E164 = re.compile(r"\+[1-9]\d{7,15}")


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


@dataclass
class TencentSmsFake:
    url: str = ""
    secrets_by_id: dict[str, str] = field(default_factory=lambda: {SECRET_ID: SECRET_KEY})
    delivered: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    fail_next: list[str] = field(default_factory=list)
    hang: bool = False
    garbage: bool = False
    requests: int = 0
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        """End the hung requests (the server cannot stop while one is open)."""
        self._released.set()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self._endpoint, methods=["POST"])])

    def last_code(self, phone: str) -> str:
        for message in reversed(self.delivered):
            if phone in message["PhoneNumberSet"]:
                return str(message["TemplateParamSet"][0])
        raise AssertionError(f"tencent delivered nothing to {phone}")

    def _error(self, code: str) -> JSONResponse:
        self.refused.append(code)
        return JSONResponse({"Response": {"Error": {"Code": code, "Message": code},
                                          "RequestId": secrets.token_hex(8)}})  # fmt: skip

    def _status(self, phone: str, code: str) -> JSONResponse:
        if code != "Ok":
            self.refused.append(code)
        entry = {"SerialNo": secrets.token_hex(6), "PhoneNumber": phone, "Fee": 1,
                 "SessionContext": "", "Code": code, "Message": code, "IsoCode": "CN"}  # fmt: skip
        return JSONResponse({"Response": {"SendStatusSet": [entry],
                                          "RequestId": secrets.token_hex(8)}})  # fmt: skip

    async def _endpoint(self, request: Request) -> Response:
        self.requests += 1
        if self.hang:
            await self._released.wait()
        if self.garbage:
            return Response(b'{"Response": 42', status_code=200)
        body = await request.body()
        problem = self._check_signature(request, body)
        if problem is not None:
            return self._error(problem)
        if request.headers.get("x-tc-action") != "SendSms":
            return self._error("InvalidAction")
        if request.headers.get("x-tc-version") != "2021-01-11":
            return self._error("NoSuchVersion")
        try:
            params = json.loads(body)
            phone = params["PhoneNumberSet"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            return self._error("InvalidParameter")
        if self.fail_next:
            kind, _, code = self.fail_next.pop(0).partition(":")
            return self._error(code) if kind == "error" else self._status(phone, code)
        if params.get("SmsSdkAppId") != SDK_APP_ID:
            return self._error("InvalidParameterValue.SdkAppIdNotExist")
        if params.get("SignName") != SIGN_NAME or params.get("TemplateId") != TEMPLATE_ID:
            return self._error("FailedOperation.SignatureIncorrectOrUnapproved")
        if len(params["PhoneNumberSet"]) != 1 or not _E164.fullmatch(str(phone)):
            return self._status(str(phone), "InvalidParameterValue.IncorrectPhoneNumber")
        self.delivered.append(params)
        return self._status(phone, "Ok")

    def _check_signature(self, request: Request, body: bytes) -> str | None:
        match = re.fullmatch(
            r"TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/([a-z]+)/tc3_request, "
            r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})",
            request.headers.get("authorization", ""),
        )
        if match is None:
            return "AuthFailure.InvalidAuthorization"
        secret_id, date, service, signed_headers, given = match.groups()
        secret_key = self.secrets_by_id.get(secret_id)
        if secret_key is None:
            return "AuthFailure.SecretIdNotFound"
        try:
            timestamp = int(request.headers.get("x-tc-timestamp", ""))
        except ValueError:
            return "AuthFailure.InvalidAuthorization"
        if abs(time.time() - timestamp) > 300:
            return "AuthFailure.SignatureExpire"
        if date != time.strftime("%Y-%m-%d", time.gmtime(timestamp)) or service != "sms":
            return "AuthFailure.InvalidAuthorization"
        names = signed_headers.split(";")
        if not {"content-type", "host"} <= set(names):
            return "AuthFailure.InvalidAuthorization"
        canonical = "\n".join([
            request.method, "/", request.url.query,
            "".join(f"{n}:{request.headers.get(n, '').strip().lower()}\n" for n in names),
            signed_headers, hashlib.sha256(body).hexdigest(),
        ])  # fmt: skip
        to_sign = "\n".join([
            "TC3-HMAC-SHA256", str(timestamp), f"{date}/{service}/tc3_request",
            hashlib.sha256(canonical.encode()).hexdigest(),
        ])  # fmt: skip
        key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode(), date), service), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given):
            return "AuthFailure.SignatureFailure"
        return None

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The ``sms.tencent`` settings that reach this fake."""
        return {"secret_id": SECRET_ID, "secret_key": SECRET_KEY, "sdk_app_id": SDK_APP_ID,
                "sign_name": SIGN_NAME, "template_id": TEMPLATE_ID, "endpoint": self.url,
                "timeout_s": 2.0, **overrides}  # fmt: skip
