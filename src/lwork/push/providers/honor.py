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

HONOR_TOKEN_URL = "https://iam.developer.honor.com/auth/token"
HONOR_PUSH_URL = "https://push-api.cloud.honor.com"
ACCESS_TOKEN_CODES = frozenset({80200001, 80200003})
DEAD_TOKEN_CODES = frozenset({80300007})
TEMPORARY_CODES = frozenset({81000001})


@dataclass(frozen=True, slots=True)
class HonorConfig:
    app_id: str
    client_id: str
    client_secret: str
    token_url: str = HONOR_TOKEN_URL
    base_url: str = HONOR_PUSH_URL
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not (self.app_id and self.client_id and self.client_secret):
            raise ValueError("push.honor needs app_id, client_id and client_secret")


def build_honor_message(message: PushMessage, token: str) -> dict[str, object]:
    data = {"event": message.event, "payload": dict(message.payload)}
    return {
        "data": dumps_compact(data),
        "android": {"ttl": f"{message.effective_ttl_s}s"},
        "token": [token],
    }


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def classify_honor_response(
    status: int, body: bytes, token: str, retry_after: float | None
) -> Outcome:
    """What an answer of sendMessage means (never raises)."""
    try:
        answer = loads_object(body)
    except ValueError as exc:
        return RetryLater(f"honor HTTP {status}, unreadable answer ({exc})", retry_after)
    code = _int(answer.get("code"))
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


class HonorProvider:
    name = "honor"

    def __init__(
        self,
        config: HonorConfig,
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
                "client_id": config.client_id,
                "client_secret": config.client_secret,
            },
        )
        try:
            answer = loads_object(response.content)
        except ValueError:
            answer = {}
        value = answer.get("access_token")
        if response.status_code == 200 and isinstance(value, str) and value:
            return value, lifetime(answer.get("expires_in"), 3600.0)
        if response.status_code == 200:
            raise TemporaryPushError("honor token answer unreadable")
        raise token_failure("honor", response.status_code, str(answer.get("error", "?")))

    async def send(self, message: PushMessage, target: PushTarget) -> PushResult:
        if not target.token:
            return result_from_outcome(TokenRejected("empty push token"), target.token)
        config = self._config
        access_token = await self.tokens.value()
        response = await post(
            self._client,
            f"{config.base_url.rstrip('/')}/api/v1/{config.app_id}/sendMessage",
            timeout=config.timeout_s,
            content=dumps_compact(build_honor_message(message, target.token)).encode(),
            headers={
                "Authorization": f"Bearer {access_token}",
                "Content-Type": "application/json",
                "timestamp": str(int(self._clock() * 1000)),
            },
        )
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        outcome = classify_honor_response(
            response.status_code, response.content, target.token, retry_after
        )
        if isinstance(outcome, RetryLater) and outcome.retry_after == 0.0:
            self.tokens.invalidate(access_token)
        return result_from_outcome(outcome, target.token)
