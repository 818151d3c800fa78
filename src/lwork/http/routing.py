"""The routing table of CONTRACT §1: normalised paths, per-method handlers, typed bodies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from lwork.http.request import ApiRequest


@dataclass(frozen=True, slots=True)
class AfterSend:
    """A reply plus work to do only once it has been sent to the client (e.g. acknowledging
    delivered events: if the client is gone, the work is not done)."""

    reply: msgspec.Struct | dict[str, Any]
    then: Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RawReply:
    """An answer that is not JSON (a Prometheus scrape)."""

    body: bytes
    media_type: str


Reply = msgspec.Struct | dict[str, Any] | AfterSend | RawReply
Handler = Callable[["ApiRequest"], Awaitable[Reply]]

MOBILE = "lwork/mobile/"
MOBILE_WRAPPED = "lwork/mobile1/"


@dataclass(frozen=True, slots=True)
class Route:
    """One method on one path. ``path`` is written as the contract does, e.g.
    ``/lwork/mobile/login``; routes under ``/lwork/mobile/`` are also served, response-wrapped,
    under ``/lwork/mobile1/``."""

    method: str
    path: str
    handler: Handler
    body: type[msgspec.Struct] | None = None
    response: type[msgspec.Struct] | None = None
    summary: str = ""
    rate_limited: bool = True
    checks_password: bool = False
    """Costly (a password hash): also counted against the per-IP login limit."""
    key: str = field(init=False)
    label: str = field(init=False)
    """``GET /lwork/mobile/voip/calls``: the route's name in metrics."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", normalise(self.path))
        object.__setattr__(self, "label", f"{self.method} {self.path}")


def normalise(path: str) -> str:
    """``//lwork/mobile/login/`` → ``lwork/mobile/login`` (empty segments dropped)."""
    return "/".join(part for part in path.split("/") if part)


@dataclass(frozen=True, slots=True)
class Match:
    route: Route | None
    allowed: tuple[str, ...]
    wrapped: bool


class RouteTable:
    def __init__(self, routes: Iterable[Route]) -> None:
        self._by_key: dict[str, dict[str, Route]] = {}
        self.routes: list[Route] = []
        for route in routes:
            methods = self._by_key.setdefault(route.key, {})
            if route.method in methods:
                raise ValueError(f"duplicate route {route.method} {route.path}")
            methods[route.method] = route
            self.routes.append(route)
        self._allowed = {key: tuple(sorted(methods)) for key, methods in self._by_key.items()}

    def match(self, method: str, path: str) -> Match | None:
        key = normalise(path)
        wrapped = key.startswith(MOBILE_WRAPPED)
        if wrapped:
            key = MOBILE + key[len(MOBILE_WRAPPED) :]
        methods = self._by_key.get(key)
        if methods is None:
            return None
        if method == "HEAD" and "GET" in methods:
            method = "GET"
        return Match(methods.get(method), self._allowed[key], wrapped)
