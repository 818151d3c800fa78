"""JPush (Aurora Mobile) Push API v3: the aggregator that reaches phones through its own channel
and the makers' ones, by registration id.

``POST https://api.jpush.cn/v3/push`` with HTTP Basic ``base64(appKey:masterSecret)`` and
``{"platform": ["android"], "audience": {"registration_id": [<id>]}, "message": {"msg_content",
"extras"}, "options": {"time_to_live"}}``. The event goes as a custom (pass-through) message;
an incoming call also carries an Android notification at JPush's highest ``priority`` (2) in
the ``call`` category, so the phone rings even when JPush can only reach it through a maker's
channel that drops pass-through messages.

Success is HTTP 200 ``{"sendno", "msg_id"}``; errors are ``{"error": {"code", "message"}}``:
1011 (no target matches the audience: the registration id is dead); 2002 (rate limited, HTTP
429, ``X-Rate-Limit-Reset`` seconds) and 1000 (internal error) are retried later; 1004
(authentication failed) and the rest are permanent.
"""

from __future__ import annotations

import base64

import httpx

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
from lwork.settings.push import JPushSettings

DEAD_TOKEN_CODES = frozenset({1011})
TEMPORARY_CODES = frozenset({1000, 2002})


def build_jpush_request(message: PushMessage, token: str) -> dict[str, object]:
    payload = dumps_compact(dict(message.payload))
    request: dict[str, object] = {
        "platform": ["android"],
        "audience": {"registration_id": [token]},
        "message": {"msg_content": payload, "extras": {"event": message.event}},
        "options": {"time_to_live": message.effective_ttl_s},
    }
    if message.kind == "call":
        request["notification"] = {
            "android": {
                "alert": message.alert or message.event,
                "priority": 2,
                "category": "call",
                "extras": {"event": message.event, "payload": payload},
            }
        }
    return request


def classify_jpush_response(status: int, body: bytes, retry_after: float | None) -> Outcome:
    """What an answer of /v3/push means (never raises)."""
    if status == 200:
        try:
            answer = loads_object(body)
        except ValueError as exc:
            return RetryLater(f"jpush HTTP 200, unreadable answer ({exc})", retry_after)
        if "msg_id" in answer:
            return Delivered()
        return RetryLater("jpush HTTP 200 without msg_id", retry_after)
    try:
        error = loads_object(body).get("error")
    except ValueError:
        error = None
    raw = error.get("code") if isinstance(error, dict) else None
    code = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    reason = f"jpush HTTP {status} code {code!r}"
    if code in DEAD_TOKEN_CODES:
        return TokenRejected(reason)
    if code in TEMPORARY_CODES or status in TEMPORARY_STATUSES or status >= 500:
        return RetryLater(reason, retry_after)
    if code is None:
        return RetryLater(f"jpush HTTP {status}, unreadable answer", retry_after)
    return Undeliverable(reason)


class JPushProvider(VendorProvider[JPushSettings]):
    name = "jpush"
    issues_access_tokens = False
    empty_token = "empty registration id"

    def request(self, message: PushMessage, token: str, access_token: str) -> VendorRequest:
        settings = self.settings
        credentials = f"{settings.app_key}:{settings.master_secret.get_secret_value()}"
        return VendorRequest(
            f"{self.base_url}/v3/push",
            {"content": dumps_compact(build_jpush_request(message, token)).encode()},
            {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
             "Content-Type": "application/json"},
        )  # fmt: skip

    def retry_after(self, headers: httpx.Headers) -> str | None:
        value: str | None = headers.get("retry-after") or headers.get("x-rate-limit-reset")
        return value

    def classify(self, status: int, body: bytes, token: str, retry_after: float | None) -> Outcome:
        return classify_jpush_response(status, body, retry_after)
