"""Huawei Push Kit (HMS Core) server API: a high-priority data message to one push token.

Authentication is OAuth 2.0 client credentials: ``POST https://oauth-login.cloud.huawei.com/
oauth2/v3/token`` with ``grant_type=client_credentials&client_id=<app id>&client_secret=<app
secret>`` answers ``{"access_token", "expires_in", "token_type": "Bearer"}``. A send is ``POST
https://push-api.cloud.huawei.com/v1/<app id>/messages:send`` with ``Authorization: Bearer
<access token>`` and ``{"validate_only": false, "message": {"data": "<string>", "android":
{"urgency": "HIGH", "category": "VOIP", "ttl": "30s"}, "token": [<push token>]}}``.

Incoming calls are data messages with ``urgency: HIGH`` and ``category: VOIP`` (the VoIP
category must be approved for the app in AppGallery Connect); account events are HIGH data
messages without a category.

The answer is ``{"code": "80000000", "msg": "Success", "requestId"}`` on success. Codes used:
80100000 (some tokens invalid) and 80300007 (all tokens invalid) -> the token is dead;
80200001 (OAuth authentication error) and 80200003 (OAuth token expired) -> fetch a new access
token and retry; 81000001 (internal error), HTTP 429/5xx -> retry later; anything else
(80100003 bad message, 80300002 no permission, 80300008 body too large ...) -> permanent.
"""

from __future__ import annotations

from lwork.push.providers.base import (
    Delivered,
    Outcome,
    PushMessage,
    RetryLater,
    TokenRejected,
    Undeliverable,
)
from lwork.push.providers.httputil import TEMPORARY_STATUSES, dumps_compact, loads_object
from lwork.push.providers.vendor import VendorProvider, VendorRequest
from lwork.settings.push import HuaweiSettings

SUCCESS = "80000000"
DEAD_TOKEN_CODES = frozenset({"80100000", "80300007"})
ACCESS_TOKEN_CODES = frozenset({"80200001", "80200003"})
TEMPORARY_CODES = frozenset({"81000001"})


def build_huawei_message(message: PushMessage, token: str) -> dict[str, object]:
    android: dict[str, object] = {"urgency": "HIGH", "ttl": f"{message.effective_ttl_s}s"}
    if message.kind == "call":
        android["category"] = "VOIP"
    data = {"event": message.event, "payload": dict(message.payload)}
    return {
        "validate_only": False,
        "message": {"data": dumps_compact(data), "android": android, "token": [token]},
    }


def classify_huawei_response(status: int, body: bytes, retry_after: float | None) -> Outcome:
    """What an answer of messages:send means (never raises)."""
    try:
        answer = loads_object(body)
    except ValueError as exc:
        return RetryLater(f"huawei HTTP {status}, unreadable answer ({exc})", retry_after)
    raw = answer.get("code")
    code = raw if isinstance(raw, str) else None  # anything else is no documented code
    reason = f"huawei HTTP {status} code {code!r}"
    if code == SUCCESS and 200 <= status < 300:
        return Delivered()
    if code in DEAD_TOKEN_CODES:
        return TokenRejected(reason)
    if code in ACCESS_TOKEN_CODES:
        return RetryLater(reason, 0.0)
    if code in TEMPORARY_CODES or status in TEMPORARY_STATUSES or status >= 500:
        return RetryLater(reason, retry_after)
    return Undeliverable(reason)


class HuaweiProvider(VendorProvider[HuaweiSettings]):
    name = "huawei"

    async def fetch_token(self) -> tuple[str, float]:
        settings = self.settings
        return await self.client_credentials(
            settings.token_url, settings.app_id, settings.app_secret.get_secret_value()
        )

    def request(self, message: PushMessage, token: str, access_token: str) -> VendorRequest:
        return VendorRequest(
            f"{self.base_url}/v1/{self.settings.app_id}/messages:send",
            {"content": dumps_compact(build_huawei_message(message, token)).encode()},
            {"Authorization": f"Bearer {access_token}",
             "Content-Type": "application/json; charset=utf-8"},
        )  # fmt: skip

    def classify(self, status: int, body: bytes, token: str, retry_after: float | None) -> Outcome:
        return classify_huawei_response(status, body, retry_after)
