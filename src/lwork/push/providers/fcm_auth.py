"""Google service-account credentials -> OAuth2 access token for FCM, cached until near expiry.

Flow (Google "OAuth 2.0 for Server to Server Applications", RFC 7523): sign a JWT with the
service account's RSA key (RS256; claims ``iss`` = client_email, ``scope``, ``aud`` = token_uri,
``iat``, ``exp`` <= iat + 1 h), POST it to the token URI as
``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>`` and receive
``{"access_token": "...", "expires_in": 3599, "token_type": "Bearer"}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from lwork.push.providers.base import PermanentPushError, TemporaryPushError
from lwork.push.providers.httputil import TEMPORARY_STATUSES, loads_object, parse_retry_after, post
from lwork.push.providers.jws import encode_jws, load_rsa_private_key, rs256_signer

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_ASSERTION_LIFETIME_S = 3600


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """The fields we use from a Google service-account JSON key file."""

    client_email: str
    private_key_pem: str
    private_key_id: str | None = None
    project_id: str | None = None
    token_uri: str = GOOGLE_TOKEN_URI

    @classmethod
    def parse(cls, data: str | bytes) -> ServiceAccount:
        """Read the JSON key file content; missing or mistyped fields -> ValueError."""
        raw = loads_object(data.encode("utf-8") if isinstance(data, str) else data)
        if raw.get("type", "service_account") != "service_account":
            raise ValueError("not a service_account key file")

        def text(key: str, *, required: bool) -> str | None:
            value = raw.get(key)
            if value is None and not required:
                return None
            if not isinstance(value, str) or not value:
                raise ValueError(f"service account field {key!r} missing or not a string")
            return value

        email = text("client_email", required=True)
        key = text("private_key", required=True)
        assert email is not None and key is not None  # required=True guarantees it
        return cls(
            client_email=email,
            private_key_pem=key,
            private_key_id=text("private_key_id", required=False),
            project_id=text("project_id", required=False),
            token_uri=text("token_uri", required=False) or GOOGLE_TOKEN_URI,
        )


def make_google_service_jwt(
    account: ServiceAccount, now: float, *, scope: str = FCM_SCOPE, token_uri: str | None = None
) -> str:
    """The signed assertion exchanged for an access token (valid one hour from `now`)."""
    header: dict[str, object] = {"alg": "RS256", "typ": "JWT"}
    if account.private_key_id:
        header["kid"] = account.private_key_id
    issued_at = int(now)
    claims = {
        "iss": account.client_email,
        "scope": scope,
        "aud": token_uri or account.token_uri,
        "iat": issued_at,
        "exp": issued_at + _ASSERTION_LIFETIME_S,
    }
    return encode_jws(header, claims, rs256_signer(load_rsa_private_key(account.private_key_pem)))


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A bearer token and the wall time it expires at."""

    value: str
    expires_at: float

    @classmethod
    def parse(cls, body: bytes, now: float) -> AccessToken:
        """Decode a token endpoint answer received at `now`; malformed -> ValueError."""
        data = loads_object(body)
        value = data.get("access_token")
        expires_in = data.get("expires_in")
        token_type = data.get("token_type", "Bearer")
        if not isinstance(value, str) or not value or not value.isprintable():
            raise ValueError("access_token missing")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            raise ValueError("expires_in missing")
        if not 0 < expires_in < 10**9:
            raise ValueError("expires_in out of range")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise ValueError("token_type is not Bearer")
        return cls(value=value, expires_at=now + float(expires_in))

    def is_fresh(self, now: float, margin_s: float) -> bool:
        return now < self.expires_at - margin_s


class GoogleTokenSource:
    """Hands out a valid FCM access token, exchanging a new JWT only when needed.

    Concurrent callers share one exchange (a lock); the token is reused until `refresh_margin_s`
    before it expires, or until `invalidate` is told the service rejected it.
    """

    def __init__(
        self,
        account: ServiceAccount,
        client: httpx.AsyncClient,
        *,
        token_uri: str | None = None,
        timeout_s: float = 10.0,
        refresh_margin_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._account = account
        self._client = client
        self._token_uri = token_uri or account.token_uri
        self._timeout_s = timeout_s
        self._margin_s = refresh_margin_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._cached: AccessToken | None = None
        self.exchanges = 0

    async def token(self) -> str:
        async with self._lock:
            cached = self._cached
            if cached is not None and cached.is_fresh(self._clock(), self._margin_s):
                return cached.value
            self._cached = await self._exchange()
            return self._cached.value

    def invalidate(self, value: str) -> None:
        """Forget `value` if it is the cached token (the service said it is no good)."""
        if self._cached is not None and self._cached.value == value:
            self._cached = None

    async def _exchange(self) -> AccessToken:
        now = self._clock()
        assertion = make_google_service_jwt(self._account, now, token_uri=self._token_uri)
        self.exchanges += 1
        response = await post(
            self._client,
            self._token_uri,
            timeout=self._timeout_s,
            data={"grant_type": JWT_BEARER_GRANT, "assertion": assertion},
        )
        status = response.status_code
        if status in TEMPORARY_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
            raise TemporaryPushError(f"token endpoint HTTP {status}", retry_after)
        if status != 200:
            raise PermanentPushError(
                f"token endpoint HTTP {status}: {_oauth_error(response.content)}"
            )
        try:
            return AccessToken.parse(response.content, now)
        except ValueError as exc:
            raise TemporaryPushError(f"token endpoint answer unreadable: {exc}") from None


def _oauth_error(body: bytes) -> str:
    try:
        data = loads_object(body)
    except ValueError:
        return "unreadable error body"
    error, description = data.get("error"), data.get("error_description")
    error_text = error if isinstance(error, str) else "?"
    description_text = description if isinstance(description, str) else ""
    return f"{error_text} {description_text}".strip()
