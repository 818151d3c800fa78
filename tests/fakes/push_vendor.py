"""What the Chinese push vendors' fakes share: a loopback HTTPS server, issued access tokens that
expire, devices that exist, and a queue of documented failures to play.

Each vendor fake (push_huawei.py, push_xiaomi.py, ...) checks authentication exactly as its
vendor documents it and maps the generic failure names below to that vendor's own answers:

* ``dead_token``: the device token is unknown / the app was uninstalled;
* ``throttled``: too many requests now; ``quota``: the daily quota is used up;
* ``busy``: the vendor's internal error / server busy;
* ``malformed``: an answer that is not the documented JSON;
* ``expire_token``: every access token issued so far expires now (a token expiring mid-send).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette

from fakes.tls import FakeCa, serve_asgi_tls


@dataclass
class Delivery:
    token: str
    event: dict[str, Any]
    call_priority: bool
    """The message was sent the way the vendor's documentation says VoIP calls must be."""
    raw: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    """When the fake took the message (``time.monotonic``): a channel's time to ring."""


@dataclass
class VendorPushFake:
    devices: set[str] = field(default_factory=lambda: {"device-token-1"})
    token_lifetime_s: float = 3600.0
    delivered: list[Delivery] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    fail_next: list[str] = field(default_factory=list)
    hang: bool = False
    token_requests: int = 0
    send_requests: int = 0
    base_url: str = ""
    issued: dict[str, float] = field(default_factory=dict)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def running(self, ca: FakeCa | None = None) -> AsyncIterator[VendorPushFake]:
        """Serve over HTTPS, as the vendor does, with a certificate from ``ca`` (default: the
        test run's CA, which the tests' clients trust)."""
        async with serve_asgi_tls(self.app(), ca) as base:
            self.base_url = base
            try:
                yield self
            finally:
                self._released.set()

    def issue(self) -> str:
        self.token_requests += 1
        value = secrets.token_urlsafe(24)
        self.issued[value] = time.time() + self.token_lifetime_s
        return value

    def token_state(self, value: str | None) -> str:
        """``ok``, ``expired`` or ``unknown``."""
        if value is None or value not in self.issued:
            return "unknown"
        return "ok" if time.time() < self.issued[value] else "expired"

    async def next_failure(self) -> str | None:
        """Called at the start of a send: hangs if asked, expires tokens, or pops a failure."""
        self.send_requests += 1
        if self.hang:
            await self._released.wait()
        if self.fail_next and self.fail_next[0] == "expire_token":
            self.fail_next.pop(0)
            self.issued = {value: 0.0 for value in self.issued}
            return None
        return self.fail_next.pop(0) if self.fail_next else None
