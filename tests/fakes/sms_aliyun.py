"""A loopback Aliyun SMS API (dysmsapi ``SendSms``, 2017-05-25) written from Aliyun's public
documentation, not from lwork's code.

It checks requests as the real service does: the V3 signature (``ACS3-HMAC-SHA256``),
recomputed here from the documented algorithm; a known AccessKey; ``x-acs-date`` within 15
minutes; a nonce never seen before; the body hash. It answers the documented way: ``{"Code":
"OK", "BizId": ...}`` on success, ``isv.*`` codes with HTTP 200 for business refusals, and
``SignatureDoesNotMatch`` / ``InvalidAccessKeyId.NotFound`` / ``SignatureNonceUsed`` /
``InvalidTimeStamp.Expired`` with HTTP 4xx for request errors. Tests queue refusals in
``fail_next``, make it hang, or make it answer garbage."""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

KEY_ID = "LTAI-test-key-id"
KEY_SECRET = "aliyun-test-secret-do-not-log"
SIGN_NAME = "lwork"
TEMPLATE_CODE = "SMS_123456789"
_NUMBER = re.compile(r"1[3-9]\d{9}|[1-9]\d{7,15}")


def _encode(value: str) -> str:
    # The documentation's percentEncode: RFC 3986, UTF-8, only A-Za-z0-9-_.~ left as they are.
    return quote(value, safe="-_.~")


@dataclass
class AliyunSmsFake:
    url: str = ""
    secrets_by_key: dict[str, str] = field(default_factory=lambda: {KEY_ID: KEY_SECRET})
    delivered: list[dict[str, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    fail_next: list[str] = field(default_factory=list)
    hang: bool = False
    garbage: bool = False
    requests: int = 0
    _released: asyncio.Event = field(default_factory=asyncio.Event)
    _nonces: set[str] = field(default_factory=set)

    def release(self) -> None:
        """End the hung requests (the server cannot stop while one is open)."""
        self._released.set()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/", self._endpoint, methods=["POST"])])

    def last_code(self, phone: str) -> str:
        for message in reversed(self.delivered):
            if message["PhoneNumbers"] == phone:
                return str(json.loads(message["TemplateParam"])["code"])
        raise AssertionError(f"aliyun delivered nothing to {phone}")

    def _error(self, status: int, code: str) -> JSONResponse:
        self.refused.append(code)
        return JSONResponse(
            {"Code": code, "Message": code, "RequestId": secrets.token_hex(8)}, status_code=status
        )

    async def _endpoint(self, request: Request) -> Response:
        self.requests += 1
        if self.hang:
            await self._released.wait()
        if self.garbage:
            return Response(b"<html>502 Bad Gateway</html>", status_code=200)
        body = await request.body()
        problem = self._check_signature(request, body)
        if problem is not None:
            return self._error(*problem)
        if request.headers.get("x-acs-action") != "SendSms":
            return self._error(400, "InvalidAction.NotFound")
        if request.headers.get("x-acs-version") != "2017-05-25":
            return self._error(400, "InvalidVersion")
        # Parameters may come in the query string or in a form body; both are documented.
        params = dict(request.query_params.items())
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            params.update(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
        if self.fail_next:
            code = self.fail_next.pop(0)
            status = 503 if code == "ServiceUnavailable" else 200
            return self._error(status, code)
        if params.get("SignName") != SIGN_NAME:
            return self._error(200, "isv.SMS_SIGNATURE_ILLEGAL")
        if params.get("TemplateCode") != TEMPLATE_CODE:
            return self._error(200, "isv.SMS_TEMPLATE_ILLEGAL")
        try:
            template = json.loads(params.get("TemplateParam", ""))
        except ValueError:
            return self._error(200, "isv.INVALID_JSON_PARAM")
        if not isinstance(template, dict) or "code" not in template:
            return self._error(200, "isv.TEMPLATE_MISSING_PARAMETERS")
        if not _NUMBER.fullmatch(params.get("PhoneNumbers", "")):
            return self._error(200, "isv.MOBILE_NUMBER_ILLEGAL")
        self.delivered.append(params)
        return JSONResponse(
            {"Code": "OK", "Message": "OK", "BizId": secrets.token_hex(8),
             "RequestId": secrets.token_hex(8)}
        )  # fmt: skip

    def _check_signature(self, request: Request, body: bytes) -> tuple[int, str] | None:
        authorization = request.headers.get("authorization", "")
        match = re.fullmatch(
            r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})",
            authorization,
        )
        if match is None:
            return 400, "IncompleteSignature"
        key_id, signed_headers, given = match.groups()
        secret = self.secrets_by_key.get(key_id)
        if secret is None:
            return 404, "InvalidAccessKeyId.NotFound"
        names = signed_headers.split(";")
        required = {"host", "x-acs-action", "x-acs-version", "x-acs-date",
                    "x-acs-signature-nonce", "x-acs-content-sha256"}  # fmt: skip
        if not required <= set(names) or names != sorted(names):
            return 400, "IncompleteSignature"
        try:
            sent_at = calendar.timegm(time.strptime(request.headers["x-acs-date"],
                                                    "%Y-%m-%dT%H:%M:%SZ"))  # fmt: skip
        except ValueError:
            return 400, "InvalidTimeStamp.Format"
        if abs(time.time() - sent_at) > 15 * 60:
            return 400, "InvalidTimeStamp.Expired"
        if request.headers["x-acs-content-sha256"] != hashlib.sha256(body).hexdigest():
            return 400, "SignatureDoesNotMatch"
        # The canonical query is rebuilt from the decoded pairs, as the service does.
        pairs = []
        for item in request.url.query.split("&") if request.url.query else []:
            name, _, value = item.partition("=")
            pairs.append((_encode(unquote(name)), _encode(unquote(value))))
        canonical = "\n".join([
            request.method,
            request.url.path,
            "&".join(f"{n}={v}" for n, v in sorted(pairs)),
            "".join(f"{n}:{request.headers.get(n, '').strip()}\n" for n in names),
            signed_headers,
            request.headers["x-acs-content-sha256"],
        ])  # fmt: skip
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
        expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given):
            return 400, "SignatureDoesNotMatch"
        nonce = request.headers["x-acs-signature-nonce"]
        if nonce in self._nonces:
            return 400, "SignatureNonceUsed"
        self._nonces.add(nonce)
        return None

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The ``sms.aliyun`` settings that reach this fake."""
        return {"access_key_id": KEY_ID, "access_key_secret": KEY_SECRET, "sign_name": SIGN_NAME,
                "template_code": TEMPLATE_CODE, "endpoint": self.url, "timeout_s": 2.0,
                **overrides}  # fmt: skip
