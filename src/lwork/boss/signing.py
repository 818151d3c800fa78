"""Request signatures of CONTRACT §9, pure: HMAC-SHA256 over timestamp, method, path and body.

The string signed is ``<timestamp>\\n<method>\\n<path>\\n<hex SHA-256 of the body>``; the
signature is its lowercase hex HMAC-SHA256 under the key's secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def signed_string(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    return f"{timestamp}\n{method}\n{path}\n{body_digest(body)}".encode()


def sign(secret: str, timestamp: str, method: str, path: str, body: bytes) -> str:
    message = signed_string(timestamp, method, path, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verifies(
    secrets: Iterable[str], signature: str, timestamp: str, method: str, path: str, body: bytes
) -> bool:
    """Whether ``signature`` is right under any of the key's secrets (two while rotating).
    Every secret is tried, so the time taken does not tell which one matched."""
    found = False
    for secret in secrets:
        expected = sign(secret, timestamp, method, path, body)
        found |= hmac.compare_digest(expected, signature.lower())
    return found
