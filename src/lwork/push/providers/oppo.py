"""OPPO Push (HeyTap) server API: a notification to one registration id.

Authentication: ``POST https://api.push.oppomobile.com/server/v1/auth`` with the form
``app_key``, ``timestamp`` (milliseconds) and ``sign = sha256_hex(app_key + timestamp +
master_secret)`` answers ``{"code": 0, "data": {"auth_token", "create_time"}}``; the token is
valid for 24 hours. A send is ``POST /server/v1/message/notification/unicast`` with the header
``auth_token`` and the form field ``message`` holding JSON ``{"target_type": 2, "target_value":
<registration id>, "notification": {...}}``.

OPPO delivers notifications only (no pass-through for third-party apps). Incoming calls use
the instant-messaging category ``IM`` with ``notify_level`` 16 (shade, lock screen, banner,
vibration and ring: the strongest OPPO allows); account events use ``ACCOUNT`` at level 2. The
event travels in ``action_parameters`` for the app to read when it opens.

Answers are ``{"code": 0, "message": "Success", "data": {"messageId"}}``. Codes handled: 11
(invalid auth_token: fetch a new one, retry), -1 (service busy), -2 (flow control), 13 / 33
(call or message quota reached) -> retry later; 10000 (invalid registration id) -> dead token;
anything else -> permanent.
"""

from __future__ import annotations

import hashlib

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
from lwork.settings.push import OppoSettings

TOKEN_LIFETIME_S = 24 * 3600.0
CODES = CodeTable(
    "oppo",
    "code",
    invalid_access_token=11,
    dead_device_token=frozenset({10000}),
    temporary=frozenset({-1, -2, 13, 33}),
)


def oppo_sign(app_key: str, timestamp_ms: str, master_secret: str) -> str:
    return hashlib.sha256(f"{app_key}{timestamp_ms}{master_secret}".encode()).hexdigest()


def build_oppo_message(message: PushMessage, channel_id: str, token: str) -> dict[str, object]:
    call = message.kind == "call"
    notification: dict[str, object] = {
        "title": message.alert or message.event,
        "content": message.alert or message.event,
        "click_action_type": 0,
        "action_parameters": dumps_compact(
            {"event": message.event, "payload": dumps_compact(dict(message.payload))}
        ),
        "channel_id": channel_id,
        "category": "IM" if call else "ACCOUNT",
        "notify_level": 16 if call else 2,
        "off_line_ttl": message.effective_ttl_s,
    }
    return {"target_type": 2, "target_value": token, "notification": notification}


def classify_oppo_response(status: int, body: bytes, retry_after: float | None) -> Outcome:
    """What an answer of the unicast API means (never raises)."""
    return classify_coded_answer(CODES, status, body, retry_after)


class OppoProvider(VendorProvider[OppoSettings]):
    name = "oppo"
    empty_token = "empty registration id"

    async def fetch_token(self) -> tuple[str, float]:
        settings = self.settings
        timestamp = self.now_ms()
        sign = oppo_sign(settings.app_key, timestamp, settings.master_secret.get_secret_value())
        response = await self.post(VendorRequest(
            f"{self.base_url}/server/v1/auth",
            {"data": {"app_key": settings.app_key, "timestamp": timestamp, "sign": sign}},
        ))  # fmt: skip
        value = self.issued_token(response, CODES, ("data", "auth_token"))
        return value, TOKEN_LIFETIME_S

    def request(self, message: PushMessage, token: str, access_token: str) -> VendorRequest:
        body = build_oppo_message(message, self.settings.channel_id, token)
        return VendorRequest(
            f"{self.base_url}/server/v1/message/notification/unicast",
            {"data": {"message": dumps_compact(body)}},
            {"auth_token": access_token},
        )

    def classify(self, status: int, body: bytes, token: str, retry_after: float | None) -> Outcome:
        return classify_oppo_response(status, body, retry_after)
