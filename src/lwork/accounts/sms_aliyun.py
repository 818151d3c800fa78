"""Aliyun (Alibaba Cloud) SMS: the ``SendSms`` API (version 2017-05-25) signed with ACS3.

The code travels as a template parameter (``TemplateParam``, JSON), the text being the
template registered with Aliyun under ``TemplateCode`` and ``SignName``. Building the request
and reading the answer are pure functions; ``AliyunSmsProvider`` only moves the bytes."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from lwork.accounts import acs3_signing
from lwork.accounts.sms import SmsError
from lwork.accounts.sms_numbers import aliyun_number
from lwork.accounts.sms_vendor import HttpRequest, exchange, json_object, vendor_code

ACTION = "SendSms"
VERSION = "2017-05-25"
FORM = "application/x-www-form-urlencoded"

#: Codes that refuse the number itself: no other provider would deliver to it either.
PERMANENT_CODES = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT"})


@dataclass(frozen=True)
class AliyunConfig:
    access_key_id: str
    access_key_secret: str
    sign_name: str
    template_code: str
    template_param: str = "code"
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        missing = [
            name
            for name in ("access_key_id", "access_key_secret", "sign_name", "template_code")
            if not getattr(self, name)
        ]
        if missing:
            raise ValueError(f"sms.aliyun needs {', '.join(missing)}")


def build_request(
    config: AliyunConfig, phone: str, code: str, now: float, nonce: str
) -> HttpRequest:
    """The signed request; ValueError for a number Aliyun cannot take.

    The parameters go in a form body, not the query string: URLs end up in logs (httpx logs
    every request's URL at INFO, proxies log them too) and the code must not."""
    params = {
        "PhoneNumbers": aliyun_number(phone),
        "SignName": config.sign_name,
        "TemplateCode": config.template_code,
        "TemplateParam": json.dumps({config.template_param: code}, separators=(",", ":")),
    }
    body = acs3_signing.canonical_query(params).encode()
    parts = urlsplit(config.endpoint)
    path = parts.path or "/"
    headers = acs3_signing.sign(
        method="POST",
        host=parts.netloc,
        path=path,
        query={},
        body=body,
        action=ACTION,
        version=VERSION,
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        nonce=nonce,
        key_id=config.access_key_id,
        secret=config.access_key_secret,
        content_type=FORM,
    )
    return HttpRequest(f"{parts.scheme}://{parts.netloc}{path}", headers, body)


def read_answer(status: int, body: bytes) -> None:
    """Return on success; raise SmsError saying whether another provider may do better."""
    answer = json_object(body)
    code = answer.get("Code") if answer is not None else None
    if status == 200 and code == "OK":
        return
    if code is None:
        raise SmsError(f"aliyun answered HTTP {status} without a result code")
    shown = vendor_code(code)
    raise SmsError(f"aliyun refused: {shown}", temporary=shown not in PERMANENT_CODES)


class AliyunSmsProvider:
    def __init__(self, config: AliyunConfig, client: httpx.AsyncClient) -> None:
        self._config = config
        self._client = client

    async def send(self, phone: str, text: str, code: str) -> None:
        try:
            request = build_request(self._config, phone, code, time.time(), secrets.token_hex(16))
        except ValueError as exc:
            raise SmsError(f"aliyun cannot take the number: {exc}", temporary=False) from exc
        status, body = await exchange(self._client, "aliyun", request, self._config.timeout_s)
        read_answer(status, body)
