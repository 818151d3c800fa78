"""vivo Push server API: a notification to one regId.

Authentication: ``POST https://api-push.vivo.com.cn/message/auth`` with JSON ``{"appId",
"appKey", "timestamp" (milliseconds), "sign": md5_hex(appId + appKey + timestamp +
appSecret)}`` answers ``{"result": 0, "authToken"}``; the token is valid for 24 hours. A single
send is ``POST /message/send`` with the header ``authToken`` and JSON ``{"regId",
"notifyType", "title", "content", "timeToLive", "skipType", "requestId", "classification",
"category", "clientCustomMap"}``.

vivo delivers notifications only. Incoming calls are ``classification: 1`` (system message,
the class vivo does not cap or delay) in the instant-messaging category ``IM`` with sound and
vibration (``notifyType: 4``); account events are system messages in category ``ACCOUNT``. The
event travels in ``clientCustomMap`` (string values only).

Answers are ``{"result": 0, "desc", "taskId"}``. Codes handled: 10000 (authToken invalid or
expired: fetch a new one, retry); 10070 (message quota reached), 10071 (send frequency
limited), 1 / 10001 (server busy or internal) -> retry later; 10302 (regId does not exist) ->
dead token; anything else -> permanent.
"""

from __future__ import annotations

import hashlib
import secrets
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
from lwork.push.providers.vendor_token import VendorToken, token_failure

VIVO_BASE_URL = "https://api-push.vivo.com.cn"
TOKEN_LIFETIME_S = 24 * 3600.0
INVALID_AUTH_TOKEN = 10000
DEAD_TOKEN_CODES = frozenset({10302})
TEMPORARY_CODES = frozenset({1, 10001, 10070, 10071})


def vivo_sign(app_id: str, app_key: str, timestamp_ms: str, app_secret: str) -> str:
    # md5 is vivo's choice for this signature, not a security decision of ours.
    text = f"{app_id}{app_key}{timestamp_ms}{app_secret}".encode()
    return hashlib.md5(text, usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class VivoConfig:
    app_id: str
    app_key: str
    app_secret: str
    base_url: str = VIVO_BASE_URL
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not (self.app_id and self.app_key and self.app_secret):
            raise ValueError("push.vivo needs app_id, app_key and app_secret")


def build_vivo_message(message: PushMessage, token: str, request_id: str) -> dict[str, object]:
    call = message.kind == "call"
    return {
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


def _result(answer: dict[str, object]) -> int | None:
    code = answer.get("result")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def classify_vivo_response(status: int, body: bytes, retry_after: float | None) -> Outcome:
    """What an answer of /message/send means (never raises)."""
    try:
        answer = loads_object(body)
    except ValueError as exc:
        return RetryLater(f"vivo HTTP {status}, unreadable answer ({exc})", retry_after)
    code = _result(answer)
    reason = f"vivo HTTP {status} result {code!r}"
    if status in TEMPORARY_STATUSES or status >= 500:
        return RetryLater(reason, retry_after)
    if code == 0 and status == 200:
        return Delivered()
    if code == INVALID_AUTH_TOKEN:
        return RetryLater(reason, 0.0)
    if code in DEAD_TOKEN_CODES:
        return TokenRejected(reason)
    if code in TEMPORARY_CODES:
        return RetryLater(reason, retry_after)
    return Undeliverable(reason)


class VivoProvider:
    name = "vivo"

    def __init__(
        self,
        config: VivoConfig,
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
        timestamp = str(int(self._clock() * 1000))
        body = {
            "appId": config.app_id,
            "appKey": config.app_key,
            "timestamp": timestamp,
            "sign": vivo_sign(config.app_id, config.app_key, timestamp, config.app_secret),
        }
        response = await post(
            self._client,
            f"{config.base_url.rstrip('/')}/message/auth",
            timeout=config.timeout_s,
            content=dumps_compact(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            answer = loads_object(response.content)
        except ValueError:
            raise TemporaryPushError(f"vivo auth HTTP {response.status_code}, unreadable") from None
        value = answer.get("authToken")
        code = _result(answer)
        if response.status_code == 200 and code == 0 and isinstance(value, str) and value:
            return value, TOKEN_LIFETIME_S
        if response.status_code == 200 and code in TEMPORARY_CODES:
            raise TemporaryPushError(f"vivo auth result {code}")
        status = 400 if response.status_code == 200 else response.status_code
        raise token_failure("vivo", status, f"result {code}")

    async def send(self, message: PushMessage, target: PushTarget) -> PushResult:
        if not target.token:
            return result_from_outcome(TokenRejected("empty regId"), target.token)
        config = self._config
        auth_token = await self.tokens.value()
        body = build_vivo_message(message, target.token, secrets.token_hex(16))
        response = await post(
            self._client,
            f"{config.base_url.rstrip('/')}/message/send",
            timeout=config.timeout_s,
            content=dumps_compact(body).encode(),
            headers={"authToken": auth_token, "Content-Type": "application/json"},
        )
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        outcome = classify_vivo_response(response.status_code, response.content, retry_after)
        if isinstance(outcome, RetryLater) and outcome.retry_after == 0.0:
            self.tokens.invalidate(auth_token)
        return result_from_outcome(outcome, target.token)
