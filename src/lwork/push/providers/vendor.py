"""What sending through a Chinese phone maker's push service has in common, whatever the vendor:
refuse an empty device token, attach the vendor's access token when it issues them, read
Retry-After, classify the answer with the vendor's own table, and drop an access token the
vendor has just refused so that the guarded retry fetches a new one.

A vendor module supplies only what is its own: the request (:meth:`VendorProvider.request`),
the meaning of an answer (:meth:`VendorProvider.classify`) and, for vendors that issue access
tokens, how one is fetched (:meth:`VendorProvider.fetch_token`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

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
    loads_object,
    parse_retry_after,
    post,
)
from lwork.push.providers.vendor_token import VendorToken, lifetime, token_failure
from lwork.settings.push import VendorPushSettings

S = TypeVar("S", bound=VendorPushSettings)


@dataclass(frozen=True, slots=True)
class VendorRequest:
    """One POST to the vendor: its URL and httpx's body/header arguments."""

    url: str
    body: Mapping[str, Any] = field(default_factory=dict)
    """``content=``, ``data=`` …, passed to httpx as they are."""
    headers: Mapping[str, str] = field(default_factory=dict)


class VendorProvider(Generic[S]):
    name: str
    issues_access_tokens: ClassVar[bool] = True
    """False for vendors whose every request carries the app's own secret (Xiaomi, JPush)."""
    empty_token: ClassVar[str] = "empty push token"
    """How the vendor names a device token, for the refusal of an empty one."""

    def __init__(
        self, settings: S, client: httpx.AsyncClient, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self._client = client
        self._clock = clock
        self.tokens = VendorToken(self.fetch_token, clock=clock)

    @property
    def base_url(self) -> str:
        return self.settings.base_url.rstrip("/")

    def now_ms(self) -> str:
        """The wall clock in milliseconds, as the vendors' signatures and headers want it."""
        return str(int(self._clock() * 1000))

    async def fetch_token(self) -> tuple[str, float]:
        """A new access token and its lifetime (seconds)."""
        raise NotImplementedError(f"{self.name} issues no access tokens")

    def request(self, message: PushMessage, token: str, access_token: str) -> VendorRequest:
        raise NotImplementedError

    def classify(self, status: int, body: bytes, token: str, retry_after: float | None) -> Outcome:
        """What the vendor's answer means (never raises)."""
        raise NotImplementedError

    def retry_after(self, headers: httpx.Headers) -> str | None:
        value: str | None = headers.get("retry-after")
        return value

    async def send(self, message: PushMessage, target: PushTarget) -> PushResult:
        if not target.token:
            return result_from_outcome(TokenRejected(self.empty_token), target.token)
        access_token = await self.tokens.value() if self.issues_access_tokens else ""
        request = self.request(message, target.token, access_token)
        response = await self.post(request)
        retry_after = parse_retry_after(self.retry_after(response.headers), self._clock())
        outcome = self.classify(response.status_code, response.content, target.token, retry_after)
        if access_token and isinstance(outcome, RetryLater) and outcome.retry_after == 0.0:
            self.tokens.invalidate(access_token)  # 0.0: the vendor refused the access token
        return result_from_outcome(outcome, target.token)

    async def post(self, request: VendorRequest) -> httpx.Response:
        return await post(self._client, request.url, timeout=self.settings.timeout_s,
                          headers=dict(request.headers), **request.body)  # fmt: skip

    async def client_credentials(self, url: str, client_id: str, secret: str) -> tuple[str, float]:
        """An OAuth 2.0 client-credentials token (Huawei and Honor issue theirs this way)."""
        response = await self.post(VendorRequest(url, {"data": {
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
        }}))  # fmt: skip
        try:
            answer = loads_object(response.content)
        except ValueError:
            answer = {}
        value = answer.get("access_token")
        if response.status_code == 200 and isinstance(value, str) and value:
            return value, lifetime(answer.get("expires_in"), 3600.0)
        if response.status_code == 200:
            raise TemporaryPushError(f"{self.name} token answer unreadable")
        raise token_failure(self.name, response.status_code, str(answer.get("error", "?")))

    def issued_token(
        self, response: httpx.Response, codes: CodeTable, path: tuple[str, ...]
    ) -> str:
        """The access token in a signed-auth answer (OPPO, vivo): the code is 0 and ``path``
        leads to the token; a busy vendor is temporary, anything else permanent."""
        status = response.status_code
        try:
            answer = loads_object(response.content)
        except ValueError:
            raise TemporaryPushError(f"{self.name} auth HTTP {status}, unreadable") from None
        value: object = answer
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        code = int_field(answer, codes.field)
        if status == 200 and code == 0 and isinstance(value, str) and value:
            return value
        if status == 200 and code in codes.temporary:
            raise TemporaryPushError(f"{self.name} auth {codes.field} {code}")
        raise token_failure(self.name, 400 if status == 200 else status, f"{codes.field} {code}")


@dataclass(frozen=True, slots=True)
class CodeTable:
    """How a vendor that answers with a numeric code (OPPO, vivo) says what happened; 0 is
    success."""

    vendor: str
    field: str
    """The answer's member that holds the code."""
    invalid_access_token: int
    dead_device_token: frozenset[int]
    temporary: frozenset[int]


def classify_coded_answer(
    codes: CodeTable, status: int, body: bytes, retry_after: float | None
) -> Outcome:
    """What such a vendor's answer to a send means (never raises)."""
    try:
        answer = loads_object(body)
    except ValueError as exc:
        return RetryLater(f"{codes.vendor} HTTP {status}, unreadable answer ({exc})", retry_after)
    code = int_field(answer, codes.field)
    reason = f"{codes.vendor} HTTP {status} {codes.field} {code!r}"
    if status in TEMPORARY_STATUSES or status >= 500:
        return RetryLater(reason, retry_after)
    if code == 0 and status == 200:
        return Delivered()
    if code == codes.invalid_access_token:
        return RetryLater(reason, 0.0)  # 0.0: fetch a new access token and send again
    if code in codes.dead_device_token:
        return TokenRejected(reason)
    if code in codes.temporary:
        return RetryLater(reason, retry_after)
    return Undeliverable(reason)


def int_field(answer: Mapping[str, object], name: str) -> int | None:
    """A vendor's numeric code, or None when it is missing or not an integer (JSON true is
    not 1 here)."""
    value = answer.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
