"""APNs provider API over HTTP/2 with token-based (JWT, ES256) authentication.

``POST {base}/3/device/<device token>`` with headers ``authorization: bearer <JWT>``,
``apns-push-type`` (``voip`` for calls, ``alert`` for account events), ``apns-topic`` (the
bundle id, plus ``.voip`` for VoIP pushes), ``apns-priority`` (10 = deliver now),
``apns-expiration`` (Unix seconds after which APNs drops the push) and, optionally,
``apns-collapse-id``. The body is ``{"aps": {...}, "lwork": <event object>}``.

The provider token is a JWT with header ``{"alg": "ES256", "kid": <key id>}`` and claims
``{"iss": <team id>, "iat": <now>}``, signed with the .p8 key. Apple refuses tokens older than
an hour (ExpiredProviderToken) and refreshing more often than every 20 minutes
(TooManyProviderTokenUpdates), so one token is reused for `token_refresh_s` (40 min).

Answers: 200 with an ``apns-id`` header; otherwise ``{"reason": "...", "timestamp"?: ms}``.
410 (Unregistered / ExpiredToken) and 400 BadDeviceToken / DeviceTokenNotForTopic mean the
token is dead; 429 (TooManyRequests), 500 and 503 are temporary; 403 ExpiredProviderToken makes
us sign a new token and retry; anything else is permanent.
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
from lwork.push.providers.jws import encode_jws, es256_signer, load_p256_private_key

APNS_PRODUCTION_URL = "https://api.push.apple.com"
APNS_SANDBOX_URL = "https://api.sandbox.push.apple.com"
DEAD_TOKEN_REASONS = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic"})
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_MAX_COLLAPSE_ID_BYTES = 64


@dataclass(frozen=True, slots=True)
class ApnsConfig:
    """Token-auth credentials and endpoint for APNs."""

    team_id: str
    """10-character Apple developer Team ID (JWT ``iss``)."""
    key_id: str
    """10-character id of the .p8 signing key (JWT ``kid``)."""
    private_key_pem: str
    """Content of the AuthKey_<key id>.p8 file (PKCS#8 PEM, P-256)."""
    bundle_id: str
    """The app's bundle id: ``apns-topic`` for alerts; VoIP pushes use ``<bundle_id>.voip``."""
    base_url: str = APNS_PRODUCTION_URL
    """APNs base URL (production or sandbox)."""
    timeout_s: float = 10.0
    """Per-request HTTP timeout."""
    token_refresh_s: float = 2400.0
    """Reuse a provider token this long (Apple: between 20 and 60 minutes)."""
    max_in_flight: int = 100
    """Concurrent streams to APNs."""
    max_queued: int = 1000
    """Sends waiting for a slot before new ones are rejected."""


def make_apns_jwt(team_id: str, key_id: str, private_key_pem: str, now: float) -> str:
    """The provider authentication token issued at `now` (Unix seconds)."""
    signer = es256_signer(load_p256_private_key(private_key_pem))
    return encode_jws({"alg": "ES256", "kid": key_id}, {"iss": team_id, "iat": int(now)}, signer)


@dataclass(frozen=True, slots=True)
class ApnsRequest:
    """One notification request, without the authorization header."""

    path: str
    headers: dict[str, str]
    body: bytes


def is_plausible_device_token(token: str) -> bool:
    """Device tokens are hex strings; anything else must not reach the URL path."""
    return bool(token) and len(token) <= 200 and all(c in _HEX_DIGITS for c in token)


def build_apns_request(
    message: PushMessage, device_token: str, bundle_id: str, now: float
) -> ApnsRequest:
    """Headers and body for `message` to `device_token`, expiring `effective_ttl_s` after `now`."""
    if message.kind == "call":
        push_type, topic, aps = "voip", f"{bundle_id}.voip", {}
    else:
        push_type, topic = "alert", bundle_id
        aps = {"alert": message.alert or message.event, "sound": "default"}
    headers = {
        "apns-push-type": push_type,
        "apns-topic": topic,
        "apns-priority": "10",
        "apns-expiration": str(int(now) + message.effective_ttl_s),
    }
    if message.collapse_id:
        if len(message.collapse_id.encode("utf-8")) > _MAX_COLLAPSE_ID_BYTES:
            raise ValueError("collapse_id longer than 64 bytes")
        headers["apns-collapse-id"] = message.collapse_id
    body = dumps_compact({"aps": aps, "lwork": dict(message.payload)}).encode("utf-8")
    return ApnsRequest(path=f"/3/device/{device_token}", headers=headers, body=body)


def parse_apns_reason(body: bytes) -> str:
    """The ``reason`` of an error answer; ValueError if there is none."""
    reason = loads_object(body).get("reason")
    if not isinstance(reason, str) or not reason:
        raise ValueError("no reason in APNs answer")
    return reason


def classify_apns_response(status: int, body: bytes, retry_after: float | None) -> Outcome:
    """Decide what an HTTP answer from APNs means (never raises)."""
    if status == 200:
        return Delivered()
    try:
        reason = parse_apns_reason(body)
    except ValueError:
        reason = "?"
    text = f"apns HTTP {status} {reason}"
    if status == 410 or (status == 400 and reason in DEAD_TOKEN_REASONS):
        return TokenRejected(text)
    if status in TEMPORARY_STATUSES or status >= 500:
        return RetryLater(text, retry_after)
    if status == 403 and reason == "ExpiredProviderToken":
        return RetryLater(text, 0.0)
    return Undeliverable(text)


class ApnsProvider:
    """Pushes to an iOS device token through APNs (the client must speak HTTP/2)."""

    name = "apns"

    def __init__(
        self,
        config: ApnsConfig,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._client = client
        self._clock = clock
        self._token: tuple[str, float] | None = None

    def provider_token(self) -> str:
        """The cached JWT, signed anew once it is `token_refresh_s` old."""
        now = self._clock()
        if self._token is None or now - self._token[1] >= self._config.token_refresh_s:
            cfg = self._config
            self._token = (make_apns_jwt(cfg.team_id, cfg.key_id, cfg.private_key_pem, now), now)
        return self._token[0]

    async def send(self, message: PushMessage, target: PushTarget) -> PushResult:
        if not is_plausible_device_token(target.token):
            return result_from_outcome(TokenRejected("malformed device token"), target.token)
        try:
            request = build_apns_request(
                message, target.token, self._config.bundle_id, self._clock()
            )
        except ValueError as exc:
            return result_from_outcome(
                Undeliverable(f"apns request not built: {exc}"), target.token
            )
        jwt = self.provider_token()
        response = await post(
            self._client,
            self._config.base_url.rstrip("/") + request.path,
            timeout=self._config.timeout_s,
            content=request.body,
            headers={**request.headers, "authorization": f"bearer {jwt}"},
        )
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        outcome = classify_apns_response(response.status_code, response.content, retry_after)
        if response.status_code == 403 and isinstance(outcome, RetryLater) and self._token:
            if self._token[0] == jwt:
                self._token = None
        return result_from_outcome(outcome, target.token)
