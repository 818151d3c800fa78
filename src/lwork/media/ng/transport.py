"""The transport of rtpengine's *ng* control protocol: bencode over UDP, one cookie per request.

Requests are retransmitted with the same cookie on timeout (the relay answers a duplicate from
its cache); a reply with `"result": "error"` raises `NgError` carrying `error-reason`. With a
secret, each request's cookie carries its signature (`auth`); the secret itself is never
sent, and rtpengine echoes the longer cookie like any other.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from lwork.media.ng import bencode
from lwork.media.ng.auth import sign_cookie


class NgError(Exception):
    """The relay refused a request (`error-reason`), or its reply was unusable."""


class NgTimeout(NgError):
    """No reply after all retransmissions."""


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[bytes, asyncio.Future[bytes]] = {}
        self.dropped = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        cookie, _, body = data.partition(b" ")
        future = self.waiting.get(cookie)
        if future is None or future.done():
            self.dropped += 1  # a late reply to a retransmitted request
            return
        future.set_result(body)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable: the relay is not (yet) listening; the retry loop handles it.
        pass


class NgTransport:
    """Requests to one ng endpoint and their replies, matched by cookie."""

    def __init__(
        self, host: str, port: int, *, timeout_s: float = 1.0, retries: int = 3, secret: str = ""
    ) -> None:
        self.address = (host, port)
        self._secret = secret.encode()
        self.timeout_s = timeout_s
        self.retries = retries
        self._prefix = f"{os.getpid():x}{secrets.token_hex(3)}_"
        self._counter = itertools.count(1)
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol | None = None

    async def __aenter__(self) -> Self:
        await self._ensure_open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def _ensure_open(self) -> tuple[asyncio.DatagramTransport, _Protocol]:
        if self._transport is None or self._protocol is None:
            loop = asyncio.get_running_loop()
            transport, protocol = await loop.create_datagram_endpoint(
                _Protocol, remote_addr=self.address
            )
            self._transport = transport
            self._protocol = protocol
        return self._transport, self._protocol

    async def request(self, message: Mapping[str, bencode.Encodable]) -> dict[str, Any]:
        """Send one command; return the decoded reply with byte strings as str."""
        reply: dict[str, Any] = to_text(await self._exchange(message))
        return reply

    async def _exchange(self, message: Mapping[str, bencode.Encodable]) -> dict[bytes, Any]:
        """Send one command; return the decoded reply as it came (byte strings)."""
        body = await self._round_trip(message)
        try:
            reply = bencode.decode(body)
        except ValueError as exc:
            raise NgError(f"malformed ng reply: {exc}") from exc
        if not isinstance(reply, dict):
            raise NgError("ng reply is not a dictionary")
        if reply.get(b"result") == b"error":
            raise NgError(str(to_text(reply.get(b"error-reason", b"unknown error"))))
        return reply

    async def _round_trip(self, message: Mapping[str, bencode.Encodable]) -> bytes:
        """Send one command, retransmitting until its reply comes; the reply's body."""
        transport, protocol = await self._ensure_open()
        cookie = (self._prefix + str(next(self._counter))).encode()
        body = bencode.encode(message)
        if self._secret:
            cookie = sign_cookie(self._secret, cookie, body, time.time())
        datagram = cookie + b" " + body
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        protocol.waiting[cookie] = future
        try:
            for _ in range(self.retries + 1):
                transport.sendto(datagram)
                try:
                    body = await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
                    break
                except TimeoutError:
                    continue
            else:
                raise NgTimeout(f"no reply from ng relay at {self.address[0]}:{self.address[1]}")
        finally:
            del protocol.waiting[cookie]
            future.cancel()
        return body


def to_text(value: bencode.BValue) -> Any:
    """A decoded reply with its byte strings as str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, list):
        return [to_text(v) for v in value]
    if isinstance(value, dict):
        return {k.decode("utf-8", "surrogateescape"): to_text(v) for k, v in value.items()}
    return value
