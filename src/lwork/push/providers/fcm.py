"""Firebase Cloud Messaging HTTP v1: a high-priority data message to one registration token.

``POST {base}/v1/projects/{project_id}/messages:send`` with ``Authorization: Bearer <OAuth2
access token>`` and ``{"message": {"token": ..., "data": {...}, "android": {"priority": "HIGH",
"ttl": "30s"}}}``. `data` values must be strings, so the event object travels as JSON text in
``data.payload`` next to ``data.event``. Success answers ``{"name": "projects/.../messages/..."}``.

Errors (firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode) answer
``{"error": {"code", "message", "status", "details": [...]}}`` where a detail of type
``google.firebase.fcm.v1.FcmError`` carries ``errorCode``:

* UNREGISTERED (404), SENDER_ID_MISMATCH (403): the token is dead for us -> rejected.
* INVALID_ARGUMENT (400): rejected only when it is about the token (a BadRequest field
  violation on ``message.token``, or the "not a valid FCM registration token" answer);
  otherwise our request is wrong -> permanent failure.
* QUOTA_EXCEEDED (429), UNAVAILABLE (503), INTERNAL (500) -> temporary, honour Retry-After.
* 401 without THIRD_PARTY_AUTH_ERROR: our access token was refused -> drop it, retry.
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
from lwork.push.providers.fcm_auth import GoogleTokenSource, ServiceAccount
from lwork.push.providers.httputil import (
    TEMPORARY_STATUSES,
    dumps_compact,
    loads_object,
    parse_retry_after,
    post,
)

FCM_BASE_URL = "https://fcm.googleapis.com"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
DEAD_TOKEN_ERRORS = frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"})
TEMPORARY_ERRORS = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"})


@dataclass(frozen=True, slots=True)
class FcmConfig:
    """Credentials and endpoints for FCM HTTP v1."""

    service_account: ServiceAccount
    """Parsed service-account key file (`ServiceAccount.parse`)."""
    project_id: str | None = None
    """Firebase project id; defaults to the service account's ``project_id``."""
    base_url: str = FCM_BASE_URL
    """FCM API base URL."""
    token_uri: str | None = None
    """OAuth2 token endpoint; defaults to the service account's ``token_uri``."""
    timeout_s: float = 10.0
    """Per-request HTTP timeout (FCM send and token exchange)."""
    token_refresh_margin_s: float = 300.0
    """Exchange a new access token this long before the cached one expires."""
    max_in_flight: int = 100
    """Concurrent requests to FCM."""
    max_queued: int = 1000
    """Sends waiting for a slot before new ones are rejected."""

    def __post_init__(self) -> None:
        if not (self.project_id or self.service_account.project_id):
            raise ValueError("FCM needs a project_id (config or service account)")

    @property
    def send_url(self) -> str:
        project = self.project_id or self.service_account.project_id
        return f"{self.base_url.rstrip('/')}/v1/projects/{project}/messages:send"


def build_fcm_message(message: PushMessage, token: str) -> dict[str, object]:
    """The messages:send request body for one registration token."""
    android: dict[str, object] = {"priority": "HIGH", "ttl": f"{message.effective_ttl_s}s"}
    if message.collapse_id:
        android["collapse_key"] = message.collapse_id
    return {
        "message": {
            "token": token,
            "data": {"event": message.event, "payload": dumps_compact(dict(message.payload))},
            "android": android,
        }
    }


@dataclass(frozen=True, slots=True)
class FcmErrorResponse:
    """The parts of a v1 error answer that decide what to do."""

    status: str
    message: str
    error_code: str | None
    violated_fields: tuple[str, ...]

    @classmethod
    def parse(cls, body: bytes) -> FcmErrorResponse:
        error = loads_object(body).get("error")
        if not isinstance(error, dict):
            raise ValueError("no error object")
        status, message = error.get("status"), error.get("message")
        error_code: str | None = None
        fields: list[str] = []
        details = error.get("details")
        for detail in details if isinstance(details, list) else []:
            if not isinstance(detail, dict):
                continue
            kind = detail.get("@type")
            if kind == FCM_ERROR_TYPE and isinstance(detail.get("errorCode"), str):
                error_code = detail["errorCode"]
            elif kind == BAD_REQUEST_TYPE and isinstance(detail.get("fieldViolations"), list):
                fields += [
                    v["field"]
                    for v in detail["fieldViolations"]
                    if isinstance(v, dict) and isinstance(v.get("field"), str)
                ]
        return cls(
            status=status if isinstance(status, str) else "",
            message=message if isinstance(message, str) else "",
            error_code=error_code,
            violated_fields=tuple(fields),
        )

    @property
    def is_about_token(self) -> bool:
        return "message.token" in self.violated_fields or (
            not self.violated_fields and "registration token" in self.message
        )


def classify_fcm_response(status: int, body: bytes, retry_after: float | None) -> Outcome:
    """Decide what an HTTP answer from messages:send means (never raises)."""
    if 200 <= status < 300:
        return Delivered()
    temporary_status = status in TEMPORARY_STATUSES or status >= 500
    try:
        error = FcmErrorResponse.parse(body)
    except ValueError as exc:
        if temporary_status:
            return RetryLater(f"fcm HTTP {status}, unreadable answer ({exc})", retry_after)
        return Undeliverable(f"fcm HTTP {status}, unreadable answer ({exc})")
    code = error.error_code or error.status
    reason = f"fcm HTTP {status} {code}: {error.message}"
    if code in DEAD_TOKEN_ERRORS:
        return TokenRejected(reason)
    if code == "INVALID_ARGUMENT" and error.is_about_token:
        return TokenRejected(reason)
    if code in TEMPORARY_ERRORS or temporary_status:
        return RetryLater(reason, retry_after)
    if status == 401 and code != "THIRD_PARTY_AUTH_ERROR":
        # Our access token was refused (revoked or expired early): fetch a new one and retry.
        return RetryLater(reason, 0.0)
    return Undeliverable(reason)


class FcmProvider:
    """Pushes a high-priority data message through FCM to a registration token."""

    name = "fcm"

    def __init__(
        self,
        config: FcmConfig,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._client = client
        self._clock = clock
        self.tokens = GoogleTokenSource(
            config.service_account,
            client,
            token_uri=config.token_uri,
            timeout_s=config.timeout_s,
            refresh_margin_s=config.token_refresh_margin_s,
            clock=clock,
        )

    async def send(self, message: PushMessage, target: PushTarget) -> PushResult:
        if not target.token:
            return result_from_outcome(TokenRejected("empty registration token"), target.token)
        access_token = await self.tokens.token()
        response = await post(
            self._client,
            self._config.send_url,
            timeout=self._config.timeout_s,
            content=dumps_compact(build_fcm_message(message, target.token)).encode("utf-8"),
            headers={
                "Authorization": f"Bearer {access_token}",
                "Content-Type": "application/json; charset=utf-8",
            },
        )
        if response.status_code == 401:
            self.tokens.invalidate(access_token)
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        outcome = classify_fcm_response(response.status_code, response.content, retry_after)
        return result_from_outcome(outcome, target.token)
