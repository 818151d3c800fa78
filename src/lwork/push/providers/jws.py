"""Signing compact JWTs (RFC 7515/7519) with RS256 and ES256, using `cryptography` directly.

We only ever *sign* two fixed token shapes (the Google service-account assertion and the APNs
provider token) and never verify one, so a general JWT library would add a dependency for
about forty lines. The one subtle point is ES256: JWS wants the raw 64-byte ``r || s``
signature (RFC 7518 section 3.4), whereas `cryptography` returns DER, so it is converted here.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

Signer = Callable[[bytes], bytes]

_P256_COORDINATE_BYTES = 32


def b64url(data: bytes) -> str:
    """Base64url without padding, as JWS requires."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_segment(data: Mapping[str, object]) -> str:
    return b64url(json.dumps(data, separators=(",", ":")).encode("utf-8"))


def encode_jws(header: Mapping[str, object], claims: Mapping[str, object], sign: Signer) -> str:
    """``base64url(header) . base64url(claims) . base64url(sign(signing input))``."""
    signing_input = f"{_json_segment(header)}.{_json_segment(claims)}"
    return f"{signing_input}.{b64url(sign(signing_input.encode('ascii')))}"


def _load_private_key(pem: str | bytes) -> object:
    data = pem.encode("utf-8") if isinstance(pem, str) else pem
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"unreadable PEM private key: {exc}") from None


def load_p256_private_key(pem: str | bytes) -> ec.EllipticCurvePrivateKey:
    """Load an APNs .p8 key (PKCS#8 PEM, P-256); anything else -> ValueError."""
    key = _load_private_key(pem)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("expected an EC P-256 private key")
    return key


def load_rsa_private_key(pem: str | bytes) -> rsa.RSAPrivateKey:
    """Load a Google service-account key (PKCS#8 PEM, RSA); anything else -> ValueError."""
    key = _load_private_key(pem)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("expected an RSA private key")
    return key


def es256_signer(key: ec.EllipticCurvePrivateKey) -> Signer:
    """ECDSA P-256 / SHA-256, signature as raw ``r || s`` (32 bytes each, big-endian)."""

    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_P256_COORDINATE_BYTES, "big") + s.to_bytes(_P256_COORDINATE_BYTES, "big")

    return sign


def rs256_signer(key: rsa.RSAPrivateKey) -> Signer:
    """RSASSA-PKCS1-v1_5 with SHA-256."""

    def sign(data: bytes) -> bytes:
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    return sign
