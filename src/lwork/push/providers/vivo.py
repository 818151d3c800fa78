"""vivo Push server API: a notification to one regId.

Authentication: ``POST https://api-push.vivo.com.cn/message/auth`` with JSON ``{"appId",
"appKey", "timestamp" (milliseconds), "sign": md5_hex(appId + appKey + timestamp +
appSecret)}`` answers ``{"result": 0, "authToken"}``; the token is valid for 24 hours. A single
send is ``POST /message/send`` with the header ``authToken`` and JSON ``{"appId", "regId",
"notifyType", "title", "content", "timeToLive", "skipType", "requestId", "classification",
"category", "clientCustomMap"}``.

vivo delivers notifications only. Incoming calls are ``classification: 1`` (system message,
the class vivo does not cap or delay) in the instant-messaging category ``IM`` with sound and
vibration (``notifyType: 4``); account events are system messages in category ``ACCOUNT``. The
event travels in ``clientCustomMap`` (string values only).

Answers are ``{"result": 0, "desc", "taskId"}``. Codes handled: 10000 (authToken invalid or
expired: fetch a new one, retry); 10071 (send frequency limited), 1 / 10001 (server busy or
internal) -> retry later; 10302 (regId does not exist) -> dead token; anything else ->
permanent, 10070 (the day's send total is used up) included: vivo's server API document asks
senders not to call ``/message/send`` again that day after it, on pain of a lower quota, so a
retry within seconds would only make things worse.
"""

from __future__ import annotations

import hashlib
import secrets

from lwork.push.providers.base import (
    Outcome,
    PushMessage,
)
from lwork.push.providers.httputil import dumps_compact
from lwork.push.providers.vendor import (
    CodeTable,
    VendorProvider,
    VendorRequest,
    classify_coded_answer,
)
from lwork.settings.push import VivoSettings

TOKEN_LIFETIME_S = 24 * 3600.0
CODES = CodeTable(
    "vivo",
    "result",
    invalid_access_token=10000,
    dead_device_token=frozenset({10302}),
    # 10070 (daily total reached) is deliberately not here: see the module's docstring.
    temporary=frozenset({1, 10001, 10071}),
)
JSON = {"Content-Type": "application/json"}


def vivo_sign(app_id: str, app_key: str, timestamp_ms: str, app_secret: str) -> str:
    # md5 is vivo's choice for this signature, not a security decision of ours.
    text = f"{app_id}{app_key}{timestamp_ms}{app_secret}".encode()
    return hashlib.md5(text, usedforsecurity=False).hexdigest()


def build_vivo_message(
    message: PushMessage, token: str, request_id: str, app_id: str
) -> dict[str, object]:
    call = message.kind == "call"
    return {
        # The server API (v2.9.2) compares each request's appId with the authToken's app and
        # refuses a mismatch (10094): a token of one app cannot send for another.
        "appId": app_id,
        "regId": token,
        "notifyType": 4,
        "title": message.alert or message.event,
        "content": message.alert or message.event,
        "timeToLive": max(60, message.effective_ttl_s),  # vivo's minimum lifetime is 60 s
        "skipType": 1,
        "requestId": request_id,
        "classification": 1,
        "category": "IM" if call else "ACCOUNT",
        "clientCustomMap": {
            "event": message.event,
            "payload": dumps_compact(dict(message.payload)),
        },
    }


def classify_vivo_response(status: int, body: bytes, retry_after: float | None) -> Outcome:
    """What an answer of /message/send means (never raises)."""
    return classify_coded_answer(CODES, status, body, retry_after)


class VivoProvider(VendorProvider[VivoSettings]):
    name = "vivo"
    empty_token = "empty regId"

    async def fetch_token(self) -> tuple[str, float]:
        settings = self.settings
        timestamp = self.now_ms()
        sign = vivo_sign(settings.app_id, settings.app_key, timestamp,
                         settings.app_secret.get_secret_value())  # fmt: skip
        body = {"appId": settings.app_id, "appKey": settings.app_key, "timestamp": timestamp,
                "sign": sign}  # fmt: skip
        response = await self.post(VendorRequest(
            f"{self.base_url}/message/auth", {"content": dumps_compact(body).encode()}, JSON
        ))  # fmt: skip
        return self.issued_token(response, CODES, ("authToken",)), TOKEN_LIFETIME_S

    def request(self, message: PushMessage, token: str, access_token: str) -> VendorRequest:
        body = build_vivo_message(message, token, secrets.token_hex(16), self.settings.app_id)
        return VendorRequest(
            f"{self.base_url}/message/send",
            {"content": dumps_compact(body).encode()},
            {"authToken": access_token, **JSON},
        )

    def classify(self, status: int, body: bytes, token: str, retry_after: float | None) -> Outcome:
        return classify_vivo_response(status, body, retry_after)
