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

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from lwork.push.providers.base import (
    Delivered,
    Outcome,
    PushMessage,
    PushResult,
    PushTarget,
    RetryLater,
    TemporaryPushError,
    TokenRejected,
    Undeliverable,
    result_from_outcome,
)
from lwork.push.providers.httputil import (
    TEMPORARY_STATUSES,
    dumps_compact,
    loads_object,
    parse_retry_after,
    post,
)
from lwork.push.providers.vendor_token import VendorToken, lifetime, token_failure

HUAWEI_TOKEN_URL = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
HUAWEI_PUSH_URL = "https://push-api.cloud.huawei.com"
SUCCESS = "80000000"
DEAD_TOKEN_CODES = frozenset({"80100000", "80300007"})
ACCESS_TOKEN_CODES = frozenset({"80200001", "80200003"})
TEMPORARY_CODES = frozenset({"81000001"})


@dataclass(frozen=True, slots=True)
class HuaweiConfig:
    app_id: str
    """The app's APP ID (also the OAuth client id)."""
    app_secret: str
    """The app's APP SECRET (the OAuth client secret)."""
    token_url: str = HUAWEI_TOKEN_URL
    base_url: str = HUAWEI_PUSH_URL
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not (self.app_id and self.app_secret):
            raise ValueError("push.huawei needs app_id and app_secret")

    @property
    def send_url(self) -> str:
        return f"{self.base_url.rstrip('/')}/v1/{self.app_id}/messages:send"


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


class HuaweiProvider:
    name = "huawei"

    def __init__(
        self,
        config: HuaweiConfig,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._client = client
        self._clock = clock
        self.tokens = VendorToken(self._fetch_token, clock=clock)

    async def _fetch_token(self) -> tuple[str, float]:
        config = self._config
        response = await post(
            self._client,
            config.token_url,
            timeout=config.timeout_s,
            data={
                "grant_type": "client_credentials",
                "client_id": config.app_id,
                "client_secret": config.app_secret,
            },
        )
        try:
            answer = loads_object(response.content)
        except ValueError:
            answer = {}
        value = answer.get("access_token")
        if response.status_code != 200 or not isinstance(value, str) or not value:
            if response.status_code == 200:
                raise TemporaryPushError("huawei token answer unreadable")
            raise token_failure("huawei", response.status_code, str(answer.get("error", "?")))
        return value, lifetime(answer.get("expires_in"), 3600.0)

    async def send(self, message: PushMessage, target: PushTarget) -> PushResult:
        if not target.token:
            return result_from_outcome(TokenRejected("empty push token"), target.token)
        access_token = await self.tokens.value()
        response = await post(
            self._client,
            self._config.send_url,
            timeout=self._config.timeout_s,
            content=dumps_compact(build_huawei_message(message, target.token)).encode(),
            headers={
                "Authorization": f"Bearer {access_token}",
                "Content-Type": "application/json; charset=utf-8",
            },
        )
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        outcome = classify_huawei_response(response.status_code, response.content, retry_after)
        if isinstance(outcome, RetryLater) and outcome.retry_after == 0.0:
            self.tokens.invalidate(access_token)
        return result_from_outcome(outcome, target.token)
