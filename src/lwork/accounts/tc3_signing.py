"""Tencent Cloud API signature v3 (``TC3-HMAC-SHA256``), as a pure function of the request.

Tencent's documentation ("Signature v3") defines it: a canonical request (method, ``/``, query,
the signed headers lowercased, the hex SHA-256 of the body) is hashed into a string to sign with
the timestamp and the credential scope ``date/service/tc3_request``; the key is derived by
chaining HMAC-SHA256 from ``"TC3" + SecretKey`` over the UTC date, the service and
``tc3_request``."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

ALGORITHM = "TC3-HMAC-SHA256"


def utc_date(timestamp: int) -> str:
    # The scope's date is the UTC one: a local date would break every request near midnight.
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def canonical_request(method: str, query: str, headers: Mapping[str, str], body: bytes) -> str:
    lowered = sorted((name.lower(), value.strip().lower()) for name, value in headers.items())
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in lowered)
    return "\n".join(
        [
            method.upper(),
            "/",
            query,
            canonical_headers,
            ";".join(name for name, _ in lowered),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signature(secret_key: str, service: str, timestamp: int, request: str) -> str:
    date = utc_date(timestamp)
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            str(timestamp),
            f"{date}/{service}/tc3_request",
            hashlib.sha256(request.encode()).hexdigest(),
        ]
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    timestamp: int,
    signed_headers: Mapping[str, str],
    body: bytes,
    method: str = "POST",
    query: str = "",
) -> str:
    """The ``Authorization`` header value for a request whose ``signed_headers`` (at least
    ``content-type`` and ``host``) and body are exactly those sent."""
    request = canonical_request(method, query, signed_headers, body)
    names = ";".join(sorted(name.lower() for name in signed_headers))
    return (
        f"{ALGORITHM} Credential={secret_id}/{utc_date(timestamp)}/{service}/tc3_request, "
        f"SignedHeaders={names}, Signature={signature(secret_key, service, timestamp, request)}"
    )
