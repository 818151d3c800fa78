"""Tencent Cloud SMS: the ``SendSms`` API (version 2021-01-11) signed with TC3-HMAC-SHA256.

The code is the template's one parameter (``TemplateParamSet``), the text being the template
``TemplateId`` registered under ``SignName`` for the SMS application ``SmsSdkAppId``. Building
the request and reading the answer are pure functions; ``TencentSmsProvider`` moves the bytes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from lwork.accounts import tc3_signing
from lwork.accounts.sms import SmsError
from lwork.accounts.sms_numbers import e164
from lwork.accounts.sms_vendor import HttpRequest, exchange, json_object, vendor_code

ACTION = "SendSms"
VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"

#: Codes that refuse the number itself: no other provider would deliver to it either.
PERMANENT_CODES = frozenset(
    {
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberInBlacklist",
        "UnsupportedOperation.UnsupportedRegion",
    }
)


@dataclass(frozen=True)
class TencentConfig:
    secret_id: str
    secret_key: str
    sdk_app_id: str
    sign_name: str
    template_id: str
    region: str = "ap-guangzhou"
    endpoint: str = "https://sms.tencentcloudapi.com/"
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        missing = [
            name
            for name in ("secret_id", "secret_key", "sdk_app_id", "sign_name", "template_id")
            if not getattr(self, name)
        ]
        if missing:
            raise ValueError(f"sms.tencent needs {', '.join(missing)}")


def build_request(config: TencentConfig, phone: str, code: str, now: float) -> HttpRequest:
    """The signed request; ValueError for a number that is not E.164-able."""
    body = json.dumps(
        {
            "PhoneNumberSet": [e164(phone)],
            "SmsSdkAppId": config.sdk_app_id,
            "SignName": config.sign_name,
            "TemplateId": config.template_id,
            "TemplateParamSet": [code],
        },
        separators=(",", ":"),
    ).encode()
    host = urlsplit(config.endpoint).netloc
    timestamp = int(now)
    signed = {"content-type": CONTENT_TYPE, "host": host}
    headers = {
        **signed,
        "Authorization": tc3_signing.authorization(
            secret_id=config.secret_id,
            secret_key=config.secret_key,
            service=SERVICE,
            timestamp=timestamp,
            signed_headers=signed,
            body=body,
        ),
        "X-TC-Action": ACTION,
        "X-TC-Version": VERSION,
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Region": config.region,
    }
    return HttpRequest(config.endpoint, headers, body)


def read_answer(status: int, body: bytes) -> None:
    """Return on success; raise SmsError saying whether another provider may do better.

    A request-level failure is ``Response.Error.Code``; a per-number one is the ``Code`` of the
    number's entry in ``Response.SendStatusSet`` (``Ok`` on success)."""
    answer = json_object(body)
    response = answer.get("Response") if answer is not None else None
    if not isinstance(response, dict):
        raise SmsError(f"tencent answered HTTP {status} without a Response")
    error = response.get("Error")
    if error is not None:
        code = vendor_code(error.get("Code") if isinstance(error, dict) else None)
        raise SmsError(f"tencent refused: {code}", temporary=code not in PERMANENT_CODES)
    statuses = response.get("SendStatusSet")
    first = statuses[0] if isinstance(statuses, list) and statuses else None
    if status != 200 or not isinstance(first, dict):
        raise SmsError(f"tencent answered HTTP {status} without a send status")
    code = vendor_code(first.get("Code"))
    if code != "Ok":
        raise SmsError(f"tencent refused: {code}", temporary=code not in PERMANENT_CODES)


class TencentSmsProvider:
    def __init__(self, config: TencentConfig, client: httpx.AsyncClient) -> None:
        self._config = config
        self._client = client

    async def send(self, phone: str, text: str, code: str) -> None:
        try:
            request = build_request(self._config, phone, code, time.time())
        except ValueError as exc:
            raise SmsError(f"tencent cannot take the number: {exc}", temporary=False) from exc
        status, body = await exchange(self._client, "tencent", request, self._config.timeout_s)
        read_answer(status, body)
