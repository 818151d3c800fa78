"""Alibaba Cloud API signature V3 (``ACS3-HMAC-SHA256``), as a pure function of the request.

Aliyun's documentation ("V3 request structure and signature") defines it: a canonical request
(method, path, sorted RFC 3986-encoded query, the lowercased ``host``/``x-acs-*``/``content-type``
headers, the hex SHA-256 of the body) is hashed, prefixed with the algorithm name, and signed
with HMAC-SHA256 under the AccessKey secret; the hex signature goes in ``Authorization``."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

ALGORITHM = "ACS3-HMAC-SHA256"


def percent_encode(value: str) -> str:
    """RFC 3986: everything but the unreserved characters is %XX-encoded (space is %20, ``*`` is
    %2A, ``~`` stays), over the UTF-8 bytes."""
    return quote(value, safe="-_.~")


def canonical_query(params: Mapping[str, str]) -> str:
    encoded = sorted((percent_encode(key), percent_encode(value)) for key, value in params.items())
    return "&".join(f"{name}={value}" for name, value in encoded)


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """The headers the signature covers: host, content-type and every x-acs-* header."""
    names = {name.lower() for name in headers}
    return sorted(n for n in names if n in ("host", "content-type") or n.startswith("x-acs-"))


def canonical_request(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
) -> str:
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    names = signed_header_names(lowered)
    canonical_headers = "".join(f"{name}:{lowered[name]}\n" for name in names)
    return "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query(query),
            canonical_headers,
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def signature(secret: str, request: str) -> str:
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(request.encode()).hexdigest()}"
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def sign(
    *,
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    body: bytes,
    action: str,
    version: str,
    date: str,
    nonce: str,
    key_id: str,
    secret: str,
    content_type: str | None = None,
) -> dict[str, str]:
    """The headers of a signed request (``Authorization`` included); ``date`` is ISO 8601 UTC
    (``2023-10-26T10:22:32Z``) and ``nonce`` must differ on every request (replay defence)."""
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if content_type is not None:
        headers["content-type"] = content_type
    request = canonical_request(method, path, query, headers, body)
    names = ";".join(signed_header_names(headers))
    headers["Authorization"] = (
        f"{ALGORITHM} Credential={key_id},SignedHeaders={names},"
        f"Signature={signature(secret, request)}"
    )
    return headers
