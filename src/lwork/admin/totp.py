"""Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP), the console's optional second
factor: HMAC-SHA1, 30-second steps, 6 digits, what every authenticator app reads from an
``otpauth://`` URI. Pure: time is a parameter, no I/O.

Hand-written rather than a dependency: it is twenty lines of ``hmac`` and the RFCs' own test
vectors check it (tests/unit/test_admin_second_factor.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from urllib.parse import quote, urlencode

STEP_S = 30
DIGITS = 6
WINDOW = 1
"""Steps either side of now a code is still accepted for: a phone's clock a little off, and
the code typed as its 30 seconds ran out."""
SECRET_BYTES = 20
"""160 bits, the length RFC 4226 recommends (and SHA-1's output)."""
_CODE = re.compile(r"^[0-9]{6}$")


def hotp(key: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 section 5.3: dynamic truncation of HMAC-SHA1(key, counter)."""
    mac = hmac.new(key, counter.to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFF_FFFF
    return str(value % 10**digits).zfill(digits)


def step_of(unix_time: float) -> int:
    """RFC 6238 section 4.2: T = floor((now - T0) / X), T0 = 0."""
    return int(unix_time // STEP_S)


def totp(key: bytes, unix_time: float, digits: int = DIGITS) -> str:
    return hotp(key, step_of(unix_time), digits)


def matching_step(key: bytes, code: str, unix_time: float) -> int | None:
    """The step within ``WINDOW`` of now whose code ``code`` is (compared in constant time),
    or None. The caller refuses a step already used (a replayed code)."""
    now = step_of(unix_time)
    found = None
    for step in range(now - WINDOW, now + WINDOW + 1):
        if hmac.compare_digest(hotp(key, step), code) and found is None:
            found = step
    return found


def parse_code(raw: str) -> str | None:
    """A code as typed: six digits, spaces and dashes ignored (apps show ``123 456``); None
    for anything else."""
    if len(raw) > 32:
        return None
    code = raw.replace(" ", "").replace("-", "").replace("\u00a0", "")
    return code if _CODE.match(code) else None


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def base32(secret: bytes) -> str:
    """The secret as authenticator apps take it typed in: Base32 without padding."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def otpauth_uri(secret: bytes, account: str, issuer: str) -> str:
    """The Key URI format the authenticator apps read (as a QR code or pasted)."""
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode({"secret": base32(secret), "issuer": issuer, "algorithm": "SHA1",
                       "digits": DIGITS, "period": STEP_S})  # fmt: skip
    return f"otpauth://totp/{label}?{query}"
