"""What the console's second factor keeps and hands out: TOTP secrets sealed for the database,
and the short-lived token that carries a sign-in from its password to its code.

Both use keys derived from the server's ``secret_key`` (one HMAC each, so neither key is the
other nor the SMS codes'). A sealed secret is AES-256-GCM with the operator's name as its
associated data: a copy of the table gives no secret, and a sealed value moved to another
operator's row does not open. Changing ``secret_key`` therefore loses every enrolment: the
operators enrol again (``lwork admin user totp NAME``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PENDING_TTL_S = 300
"""How long the code form waits after the right password (then the password again)."""
_NONCE = 12


def derive_key(server_secret: bytes, purpose: str) -> bytes:
    return hmac.new(server_secret, b"lwork-admin:" + purpose.encode(), hashlib.sha256).digest()


class SecretBox:
    def __init__(self, server_secret: bytes) -> None:
        self._aead = AESGCM(derive_key(server_secret, "totp-seal"))

    def seal(self, secret: bytes, name: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = nonce + self._aead.encrypt(nonce, secret, name.encode())
        return base64.urlsafe_b64encode(sealed).decode("ascii")

    def open(self, sealed: str, name: str) -> bytes:
        """The secret; ``ValueError`` when it was sealed under another key or name."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode("ascii"))
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], name.encode())
        except (InvalidTag, binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise ValueError("the TOTP secret does not open under this secret_key") from exc


class PendingSignIns:
    """``name~expires~mac``: proof, for ``PENDING_TTL_S``, that this browser gave the right
    password for ``name`` and now owes its code. Kept in an HttpOnly cookie: nothing stored."""

    def __init__(self, server_secret: bytes) -> None:
        self._key = derive_key(server_secret, "pending-sign-in")

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()

    def issue(self, name: str, now: float) -> str:
        body = f"{name}~{int(now) + PENDING_TTL_S}"
        return f"{body}~{self._mac(body)}"

    def name_of(self, token: str, now: float) -> str | None:
        """The operator whose password this token proves, if it is ours and still fresh."""
        if len(token) > 200:
            return None
        parts = token.split("~")
        if len(parts) != 3 or not parts[1].isdigit() or len(parts[1]) > 12:
            return None
        name, expires, mac = parts
        if not hmac.compare_digest(self._mac(f"{name}~{expires}"), mac):
            return None
        return name if now < int(expires) else None
