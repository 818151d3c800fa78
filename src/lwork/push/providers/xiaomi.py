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
from lwork.settings.push import XiaomiSettings

TEMPORARY_CODES = frozenset({1, 10001, 10002, 10003, 10027, 10034, 26003})


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


class XiaomiProvider(VendorProvider[XiaomiSettings]):
    name = "xiaomi"
    issues_access_tokens = False
    empty_token = "empty registration id"

    def request(self, message: PushMessage, token: str, access_token: str) -> VendorRequest:
        settings = self.settings
        return VendorRequest(
            f"{self.base_url}/v3/message/regid",
            {"data": build_xiaomi_form(message, settings.package_name, token)},
            {"Authorization": f"key={settings.app_secret.get_secret_value()}"},
        )

    def classify(self, status: int, body: bytes, token: str, retry_after: float | None) -> Outcome:
        return classify_xiaomi_response(status, body, token, retry_after)
