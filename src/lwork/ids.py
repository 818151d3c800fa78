"""Identifiers: unguessable, URL-safe."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    """A bearer token with 256 random bits."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What we store for a token: its SHA-256 (a token has enough entropy for a fast hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_request_id() -> str:
    return secrets.token_hex(8)


def new_call_session_id(node: str) -> str:
    """``<node>@@<random>`` with 128 random bits (CONTRACT §3: ≥ 96)."""
    return f"{node}@@{secrets.token_hex(16)}"
