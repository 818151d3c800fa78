"""Honor Push server API: a data message to one push token.

Authentication is OAuth 2.0 client credentials at ``POST https://iam.developer.honor.com/auth/
token`` (``grant_type=client_credentials&client_id&client_secret``, answering ``{"access_token",
"expires_in", "token_type"}``). A send is ``POST https://push-api.cloud.honor.com/api/v1/
<app id>/sendMessage`` with ``Authorization: Bearer <token>``, a ``timestamp`` header
(milliseconds) and ``{"data": "<string>", "android": {"ttl": "30s"}, "token": [<push token>]}``.

Honor has no message class above a data message for a third-party VoIP app, so calls and
account events both go as data messages; a call's lifetime is the invitation's.

The answer is ``{"code": 200, "message", "data": {"sendResult", "failTokens",
"expireTokens"}}``. A token listed in ``failTokens`` / ``expireTokens``, or code 80300007 (all
tokens invalid), is dead; 80200003 (access token expired) and 80200001 (authentication error)
fetch a new access token and retry; 81000001 (internal error) and HTTP 429/5xx retry later;
anything else is permanent.
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
from lwork.push.providers.vendor import VendorProvider, VendorRequest, int_field
from lwork.settings.push import HonorSettings

ACCESS_TOKEN_CODES = frozenset({80200001, 80200003})
DEAD_TOKEN_CODES = frozenset({80300007})
TEMPORARY_CODES = frozenset({81000001})


def build_honor_message(message: PushMessage, token: str) -> dict[str, object]:
    data = {"event": message.event, "payload": dict(message.payload)}
    return {
        "data": dumps_compact(data),
        "android": {"ttl": f"{message.effective_ttl_s}s"},
        "token": [token],
    }


def classify_honor_response(
    status: int, body: bytes, token: str, retry_after: float | None
) -> Outcome:
    """What an answer of sendMessage means (never raises)."""
    try:
        answer = loads_object(body)
    except ValueError as exc:
        return RetryLater(f"honor HTTP {status}, unreadable answer ({exc})", retry_after)
    code = int_field(answer, "code")
    reason = f"honor HTTP {status} code {code!r}"
    if code in ACCESS_TOKEN_CODES:
        return RetryLater(reason, 0.0)
    if status in TEMPORARY_STATUSES or status >= 500 or code in TEMPORARY_CODES:
        return RetryLater(reason, retry_after)
    if code in DEAD_TOKEN_CODES:
        return TokenRejected(reason)
    data = answer.get("data")
    if code == 200 and status == 200 and isinstance(data, dict):
        for field in ("failTokens", "expireTokens"):
            listed = data.get(field)
            if isinstance(listed, list) and token in listed:
                return TokenRejected(f"{reason}: {field}")
        return Delivered()
    return Undeliverable(reason)


class HonorProvider(VendorProvider[HonorSettings]):
    name = "honor"

    async def fetch_token(self) -> tuple[str, float]:
        settings = self.settings
        return await self.client_credentials(
            settings.token_url, settings.client_id, settings.client_secret.get_secret_value()
        )

    def request(self, message: PushMessage, token: str, access_token: str) -> VendorRequest:
        return VendorRequest(
            f"{self.base_url}/api/v1/{self.settings.app_id}/sendMessage",
            {"content": dumps_compact(build_honor_message(message, token)).encode()},
            {"Authorization": f"Bearer {access_token}", "Content-Type": "application/json",
             "timestamp": self.now_ms()},
        )  # fmt: skip

    def classify(self, status: int, body: bytes, token: str, retry_after: float | None) -> Outcome:
        return classify_honor_response(status, body, token, retry_after)
