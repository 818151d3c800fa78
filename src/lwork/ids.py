"""Identifiers: unguessable, URL-safe."""

from __future__ import annotations

import hashlib
import itertools
import secrets


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
    return f"{node}@@{secrets.token_hex(16)}"
