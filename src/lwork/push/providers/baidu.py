"""Baidu Cloud Push (REST API v3): push one message to the channel_id an app registered.

Wire format (push.baidu.com "Http Rest API 开发文档 V3.0" and its SDK guide):
``POST {base}/push/single_device``, ``Content-Type: application/x-www-form-urlencoded;
charset=utf-8``, a ``BCCS_SDK/3.0`` User-Agent, form fields ``apikey``, ``timestamp``,
optional ``expires`` / ``device_type``, then ``channel_id``, ``msg_type`` (0 = pass-through
message, handed to the app as is), ``msg`` (JSON text), ``msg_expires`` (0..604800 s) and
``sign``::

    sign = md5( urlencode( METHOD + url + k1=v1 + k2=v2 ... (keys sorted) + secret_key ) )

where `url` is the request URL without query string and `urlencode` is PHP's ``urlencode``
(the reference SDK's language): everything except ``[A-Za-z0-9_.-]`` percent-encoded from UTF-8
with upper-case hex, space as ``+``.

Answers: ``{"request_id": n, "response_params": {"msg_id": "...", "send_time": n}}`` on
success, ``{"request_id": n, "error_code": n, "error_msg": "..."}`` on failure. Error codes
30607 (Channel Token Timeout) and 30608 (Bind Relation Not Found) mean the channel is gone;
30600 (Internal Server Error) is temporary.
"""

from __future__ import annotations

import hashlib
import time
import urllib.parse
from collections.abc import Callable, Mapping
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

BAIDU_BASE_URL = "https://api.tuisong.baidu.com/rest/3.0"
BAIDU_USER_AGENT = "BCCS_SDK/3.0 (Linux) Python/3 (lwork push provider)"
DEVICE_TYPE_ANDROID = 3
DEVICE_TYPE_IOS = 4
#: The channel is gone: remove the registration.
INVALID_CHANNEL_ERRORS = frozenset({30607, 30608})
#: Baidu's own "try again" codes.
TEMPORARY_ERRORS = frozenset({30600})
_MAX_MSG_EXPIRES_S = 604800


@dataclass(frozen=True, slots=True)
class BaiduConfig:
    """Credentials and endpoint for Baidu Cloud Push."""

    api_key: str
    """The app's API key (Baidu developer console)."""
    secret_key: str
    """The app's secret key, used only to sign requests."""
    base_url: str = BAIDU_BASE_URL
    """REST base URL up to and including ``/rest/3.0``."""
    device_type: int = DEVICE_TYPE_ANDROID
    """3 = Android app, 4 = iOS app (v3 apps serve one platform each)."""
    deploy_status: int = 2
    """iOS only: 1 = development, 2 = production."""
    sign_expires_s: int | None = None
    """If set, send ``expires`` = now + this, shortening the server's 10 min signature window."""
    timeout_s: float = 10.0
    """Per-request HTTP timeout."""
    max_in_flight: int = 64
    """Concurrent requests to Baidu."""
    max_queued: int = 1024
    """Sends waiting for a slot before new ones are rejected."""


def php_urlencode(text: str) -> str:
    """PHP ``urlencode``: keep ``[A-Za-z0-9_.-]``, space -> ``+``, the rest %XX of UTF-8."""
    # Python's quote keeps "~" (RFC 3986 unreserved); PHP does not.
    return urllib.parse.quote_plus(text, safe="").replace("~", "%7E")


def baidu_sign(method: str, url: str, params: Mapping[str, str], secret_key: str) -> str:
    """The v3 request signature over every parameter except ``sign`` itself."""
    pairs = "".join(f"{key}={params[key]}" for key in sorted(params) if key != "sign")
    gathered = f"{method.upper()}{url}{pairs}{secret_key}"
    return hashlib.md5(php_urlencode(gathered).encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class BaiduRequest:
    """A signed push/single_device request, ready to POST."""

    url: str
    params: dict[str, str]

    @property
    def body(self) -> bytes:
        return urllib.parse.urlencode(self.params).encode("ascii")


def build_baidu_message(config: BaiduConfig, message: PushMessage) -> str:
    """The ``msg`` field: the event object for Android, an APNs-shaped object for iOS apps."""
    if config.device_type == DEVICE_TYPE_IOS:
        aps: dict[str, object] = (
            {} if message.kind == "call" else {"alert": message.alert or message.event}
        )
        return dumps_compact({"aps": aps, "lwork": dict(message.payload)})
    return dumps_compact(dict(message.payload))


def build_baidu_request(
    config: BaiduConfig, message: PushMessage, channel_id: str, now: float
) -> BaiduRequest:
    """Build and sign the request pushing `message` to `channel_id` at wall time `now`."""
    url = f"{config.base_url.rstrip('/')}/push/single_device"
    params = {
        "apikey": config.api_key,
        "timestamp": str(int(now)),
        "device_type": str(config.device_type),
        "channel_id": channel_id,
        "msg_type": "0",
        "msg": build_baidu_message(config, message),
        "msg_expires": str(min(message.effective_ttl_s, _MAX_MSG_EXPIRES_S)),
    }
    if config.device_type == DEVICE_TYPE_IOS:
        params["deploy_status"] = str(config.deploy_status)
    if config.sign_expires_s is not None:
        params["expires"] = str(int(now) + config.sign_expires_s)
    params["sign"] = baidu_sign("POST", url, params, config.secret_key)
    return BaiduRequest(url=url, params=params)


@dataclass(frozen=True, slots=True)
class BaiduResponse:
    """A decoded answer: either `msg_id` (success) or `error_code` / `error_msg`."""

    request_id: int | None
    msg_id: str | None
    error_code: int | None
    error_msg: str

    @classmethod
    def parse(cls, body: bytes) -> BaiduResponse:
        data = loads_object(body)
        request_id = data.get("request_id")
        if not isinstance(request_id, int) or isinstance(request_id, bool):
            request_id = None
        error_code = data.get("error_code")
        if error_code is not None:
            if not isinstance(error_code, int) or isinstance(error_code, bool):
                raise ValueError("error_code is not an integer")
            error_msg = data.get("error_msg")
            return cls(
                request_id, None, error_code, error_msg if isinstance(error_msg, str) else ""
            )
        params = data.get("response_params")
        if not isinstance(params, dict):
            raise ValueError("neither error_code nor response_params")
        msg_id = params.get("msg_id")
        if isinstance(msg_id, bool) or not isinstance(msg_id, str | int):
            raise ValueError("response_params without msg_id")
        return cls(request_id, str(msg_id), None, "")


def classify_baidu_response(status: int, body: bytes, retry_after: float | None) -> Outcome:
    """Decide what an HTTP answer from Baidu means (never raises)."""
    temporary_status = status in TEMPORARY_STATUSES or status >= 500
    try:
        response = BaiduResponse.parse(body)
    except ValueError as exc:
        if temporary_status or 200 <= status < 300:
            return RetryLater(f"baidu HTTP {status}, unreadable answer ({exc})", retry_after)
        return Undeliverable(f"baidu HTTP {status}, unreadable answer ({exc})")
    if response.error_code is None:
        if 200 <= status < 300:
            return Delivered()
        if temporary_status:
            return RetryLater(f"baidu HTTP {status}", retry_after)
        return Undeliverable(f"baidu HTTP {status}")
    reason = f"baidu error {response.error_code}: {response.error_msg}"
    if response.error_code in INVALID_CHANNEL_ERRORS:
        return TokenRejected(reason)
    if response.error_code in TEMPORARY_ERRORS or temporary_status:
        return RetryLater(reason, retry_after)
    return Undeliverable(reason)


class BaiduProvider:
    """Pushes through Baidu Cloud Push to a channel_id (`PushTarget.token`)."""

    name = "baidu"

    def __init__(
        self,
        config: BaiduConfig,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._client = client
        self._clock = clock

    async def send(self, message: PushMessage, target: PushTarget) -> PushResult:
        if not target.token:
            return result_from_outcome(TokenRejected("empty channel_id"), target.token)
        request = build_baidu_request(self._config, message, target.token, self._clock())
        response = await post(
            self._client,
            request.url,
            timeout=self._config.timeout_s,
            content=request.body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded;charset=utf-8",
                "User-Agent": BAIDU_USER_AGENT,
            },
        )
        retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
        outcome = classify_baidu_response(response.status_code, response.content, retry_after)
        return result_from_outcome(outcome, target.token)
