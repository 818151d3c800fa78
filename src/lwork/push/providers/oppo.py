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

OPPO_BASE_URL = "https://api.push.oppomobile.com"
TOKEN_LIFETIME_S = 24 * 3600.0
INVALID_AUTH_TOKEN = 11
DEAD_TOKEN_CODES = frozenset({10000})
TEMPORARY_CODES = frozenset({-1, -2, 13, 33})


def oppo_sign(app_key: str, timestamp_ms: str, master_secret: str) -> str:
    return hashlib.sha256(f"{app_key}{timestamp_ms}{master_secret}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class OppoConfig:
    app_key: str
    master_secret: str
    channel_id: str = "lwork_calls"
    """The notification channel the app created for calls (OPPO requires one)."""
    base_url: str = OPPO_BASE_URL
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not (self.app_key and self.master_secret):
            raise ValueError("push.oppo needs app_key and master_secret")


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


def _code(answer: dict[str, object]) -> int | None:
    code = answer.get("code")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def classify_oppo_response(status: int, body: bytes, retry_after: float | None) -> Outcome:
    """What an answer of the unicast API means (never raises)."""
    try:
        answer = loads_object(body)
    except ValueError as exc:
        return RetryLater(f"oppo HTTP {status}, unreadable answer ({exc})", retry_after)
    code = _code(answer)
    reason = f"oppo HTTP {status} code {code!r}"
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


class OppoProvider:
    name = "oppo"

    def __init__(
        self,
        config: OppoConfig,
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
        response = await post(
            self._client,
            f"{config.base_url.rstrip('/')}/server/v1/auth",
            timeout=config.timeout_s,
            data={
                "app_key": config.app_key,
                "timestamp": timestamp,
                "sign": oppo_sign(config.app_key, timestamp, config.master_secret),
            },
        )
        try:
            answer = loads_object(response.content)
        except ValueError:
            raise TemporaryPushError(f"oppo auth HTTP {response.status_code}, unreadable") from None
        data = answer.get("data")
        value = data.get("auth_token") if isinstance(data, dict) else None
        if response.status_code == 200 and _code(answer) == 0 and isinstance(value, str) and value:
            return value, TOKEN_LIFETIME_S
        status = response.status_code
        if status == 200 and _code(answer) in TEMPORARY_CODES:
            raise TemporaryPushError(f"oppo auth code {_code(answer)}")
        raise token_failure("oppo", 400 if status == 200 else status, f"code {_code(answer)}")

    async def send(self, message: PushMessage, target: PushTarget) -> PushResult:
        if not target.token:
            return result_from_outcome(TokenRejected("empty registration id"), target.token)
        config = self._config
        auth_token = await self.tokens.value()
        body = build_oppo_message(message, config.channel_id, target.token)
        response = await post(
            self._client,
            f"{config.base_url.rstrip('/')}/server/v1/message/notification/unicast",
            timeout=config.timeout_s,
            data={"message": dumps_compact(body)},
            headers={"auth_token": auth_token},
        )
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        outcome = classify_oppo_response(response.status_code, response.content, retry_after)
        if isinstance(outcome, RetryLater) and outcome.retry_after == 0.0:
            self.tokens.invalidate(auth_token)
        return result_from_outcome(outcome, target.token)
