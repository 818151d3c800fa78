"""Third-party push: the one-method provider protocol, its data types and failure classes.

Theory of operation
-------------------
A provider module (Baidu, FCM, APNs) knows how to hand one message for one device to one
third-party service. For every answer it can name, it returns a `PushResult`: the message was
accepted, or the device token is dead. A dead token is *data* (`rejected_tokens`): the caller
removes that registration. Anything worth retrying (HTTP 5xx, 429, network errors, timeouts)
raises `TemporaryPushError`, optionally with the server's `retry_after`; anything that retrying
cannot fix (bad credentials, a request the service refuses) raises `PermanentPushError`.

`GuardedProvider` (guard.py) wraps a provider: it turns those two exceptions into retries with
capped exponential backoff and finally into a `PushResult`, so callers only ever see data.

Each provider classifies a response with a pure function returning an `Outcome`
(`Delivered | TokenRejected | RetryLater | Undeliverable`); `result_from_outcome` is the single
place where an outcome becomes a result or one of the two exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

PushKind = Literal["call", "account"]

#: A call invitation is useless once the caller has given up, so it must not linger.
CALL_TTL_S = 30
#: Account events (login elsewhere, ...) stay relevant for a while.
ACCOUNT_TTL_S = 3600


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One event to wake a device with.

    `payload` is the event object exactly as the long poll would deliver it, e.g.
    ``{"event": "p2p_inform_called", "caller": "...", "opdata": {...}}``. `kind` decides how
    urgent the push is: ``"call"`` goes out as an APNs VoIP push / high priority with a short
    expiry, ``"account"`` as a visible alert. `ttl_s` overrides the per-kind default lifetime;
    `collapse_id` lets the service replace an older undelivered push with the same id; `alert` is
    the text an alert push shows (defaults to the event name).
    """

    event: str
    payload: Mapping[str, object] = field(hash=False)
    kind: PushKind = "account"
    ttl_s: int | None = None
    collapse_id: str | None = None
    alert: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("call", "account"):
            raise ValueError(f"unknown push kind {self.kind!r}")
        if self.ttl_s is not None and self.ttl_s < 0:
            raise ValueError("ttl_s must be >= 0")

    @property
    def effective_ttl_s(self) -> int:
        """Lifetime in seconds: the explicit `ttl_s`, else the default for the kind."""
        if self.ttl_s is not None:
            return self.ttl_s
        return CALL_TTL_S if self.kind == "call" else ACCOUNT_TTL_S


@dataclass(frozen=True, slots=True)
class PushTarget:
    """Where to push: provider name (``"baidu"``, ``"fcm"``, ``"apns"``) and its device address.

    `token` is the Baidu channel_id, the FCM registration token or the APNs device token.
    """

    provider: str
    token: str
    user_id: str | None = None
    platform: str | None = None


@dataclass(frozen=True, slots=True)
class PushResult:
    """What happened to one push, after all retries.

    `delivered` means the service accepted the message. `rejected_tokens` lists tokens the
    service says are dead (remove those registrations). `failure` explains any other failure.
    """

    delivered: bool
    attempts: int = 1
    rejected_tokens: tuple[str, ...] = ()
    failure: str | None = None


class PushError(Exception):
    """Base of the two failure classes a provider may raise."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryPushError(PushError):
    """Worth retrying; `retry_after` (seconds) is the server's hint, if it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PushTimeoutError(TemporaryPushError):
    """The service did not answer in time (counted separately, retried like any temporary)."""


class PermanentPushError(PushError):
    """Retrying will not help (credentials, configuration, a request the service refuses)."""


class PushProvider(Protocol):
    """Delivers one message to one device through one third-party service."""

    name: str

    async def send(self, message: PushMessage, target: PushTarget) -> PushResult: ...


@dataclass(frozen=True, slots=True)
class Delivered:
    """The service accepted the message."""


@dataclass(frozen=True, slots=True)
class TokenRejected:
    """The device token/channel is dead; the registration should be removed."""

    reason: str


@dataclass(frozen=True, slots=True)
class RetryLater:
    """A temporary failure; `retry_after` is the server's hint in seconds."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Undeliverable:
    """A permanent failure that is not about the token."""

    reason: str


Outcome = Delivered | TokenRejected | RetryLater | Undeliverable


def result_from_outcome(outcome: Outcome, token: str) -> PushResult:
    """Map a classified response to a result, or raise the matching failure class."""
    match outcome:
        case Delivered():
            return PushResult(delivered=True)
        case TokenRejected(reason):
            return PushResult(delivered=False, rejected_tokens=(token,), failure=reason)
        case RetryLater(reason, retry_after):
            raise TemporaryPushError(reason, retry_after)
        case Undeliverable(reason):
            raise PermanentPushError(reason)
