"""Identifiers: unguessable, URL-safe."""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import threading


class _Entropy:
    """Random bytes from the kernel, fetched 4 KiB at a time.

    ``os.urandom`` releases the GIL around its system call, and an event loop sharing the GIL
    with database threads then waits for them to hand it back: in a profile of call set-ups
    the four ids of a call took ~5 % of the event loop's time. The bytes are the kernel's all
    the same; each is handed out once (a lock, since several threads draw ids), and a forked
    child starts with an empty buffer, so parent and child never share one."""

    SIZE = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._used = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._buffer, self._used = b"", 0

    def take(self, count: int) -> bytes:
        with self._lock:
            if self._used + count > len(self._buffer):
                self._buffer, self._used = os.urandom(max(self.SIZE, count)), 0
            start = self._used
            self._used += count
            return self._buffer[start : self._used]


_entropy = _Entropy()


def random_hex(count: int) -> str:
    """``count`` random bytes (from the kernel's CSPRNG) as hex: an unguessable id."""
    return _entropy.take(count).hex()


def new_token() -> str:
    """A bearer token with 256 random bits."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What we store for a token: its SHA-256 (a token has enough entropy for a fast hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


_REQUEST_PREFIX = secrets.token_hex(4)
_request_counter = itertools.count(1)


def new_request_id() -> str:
    """Unique within the process and across restarts (random prefix), cheap: no system call
    per request. A request id only ties log lines together; it guards nothing."""
    return f"{_REQUEST_PREFIX}{next(_request_counter) & 0xFFFFFFFF:08x}"


def new_call_session_id(node: str) -> str:
    """``<node>@@<random>`` with 128 random bits (CONTRACT §3: ≥ 96)."""
    return f"{node}@@{random_hex(16)}"
