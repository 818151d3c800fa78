"""Xiaomi MiPush server API: a pass-through message to one registration id.

``POST https://api.xmpush.xiaomi.com/v3/message/regid`` with ``Authorization: key=<AppSecret>``
and a form body: ``registration_id``, ``restricted_package_name``, ``payload`` (our event as
JSON), ``pass_through=1``, ``time_to_live`` (milliseconds), ``title``/``description``. MiPush has
no priority for pass-through messages: a call goes out as a pass-through message whose lifetime
is the invitation's, so a late one is dropped rather than ringing after the caller gave up.

The answer is ``{"result": "ok", "code": 0, "data": {"id": ...}}`` on success, with
``data.bad_regids`` listing registration ids MiPush does not know (the device token is dead).
Failures are ``{"result": "error", "code": <n>, "reason"}``; from MiPush's server error code
table: 1, 10001, 10002 (system busy), 10003, 26003 (internal) and 10027 (API calls too
frequent), 10034 (too many messages today) are retried later; 21301 (authentication failed)
and the rest are permanent.
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

XIAOMI_BASE_URL = "https://api.xmpush.xiaomi.com"
TEMPORARY_CODES = frozenset({1, 10001, 10002, 10003, 10027, 10034, 26003})


@dataclass(frozen=True, slots=True)
class XiaomiConfig:
    app_secret: str
    """The app's AppSecret from the Xiaomi developer console."""
    package_name: str
    """The Android package (``restricted_package_name``)."""
    base_url: str = XIAOMI_BASE_URL
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not (self.app_secret and self.package_name):
            raise ValueError("push.xiaomi needs app_secret and package_name")


def build_xiaomi_form(message: PushMessage, package: str, token: str) -> dict[str, str]:
    return {
        "registration_id": token,
        "restricted_package_name": package,
        "payload": dumps_compact({"event": message.event, "payload": dict(message.payload)}),
        "pass_through": "1",
        "time_to_live": str(message.effective_ttl_s * 1000),
        "title": message.alert or message.event,
        "description": message.alert or message.event,
    }


def classify_xiaomi_response(
    status: int, body: bytes, token: str, retry_after: float | None
) -> Outcome:
    """What an answer of /v3/message/regid means (never raises)."""
    try:
        answer = loads_object(body)
    except ValueError as exc:
        return RetryLater(f"xiaomi HTTP {status}, unreadable answer ({exc})", retry_after)
    code = answer.get("code")
    reason = f"xiaomi HTTP {status} code {code!r}"
    if status in TEMPORARY_STATUSES or status >= 500:
        return RetryLater(reason, retry_after)
    if answer.get("result") == "ok" and code == 0 and status == 200:
        data = answer.get("data")
        bad = data.get("bad_regids") if isinstance(data, dict) else None
        if isinstance(bad, str) and token in bad.split(","):
            return TokenRejected(f"{reason}: bad_regids")
        return Delivered()
    if isinstance(code, int) and not isinstance(code, bool) and code in TEMPORARY_CODES:
        return RetryLater(reason, retry_after)
    return Undeliverable(reason)


class XiaomiProvider:
    name = "xiaomi"

    def __init__(
        self,
        config: XiaomiConfig,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._client = client
        self._clock = clock

    async def send(self, message: PushMessage, target: PushTarget) -> PushResult:
        if not target.token:
            return result_from_outcome(TokenRejected("empty registration id"), target.token)
        config = self._config
        response = await post(
            self._client,
            f"{config.base_url.rstrip('/')}/v3/message/regid",
            timeout=config.timeout_s,
            data=build_xiaomi_form(message, config.package_name, target.token),
            headers={"Authorization": f"key={config.app_secret}"},
        )
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        outcome = classify_xiaomi_response(
            response.status_code, response.content, target.token, retry_after
        )
        return result_from_outcome(outcome, target.token)
