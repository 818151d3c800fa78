"""The App Store's signed data (StoreKit 2 transactions, App Store Server Notifications V2): a
compact JWS, ES256, whose header's ``x5c`` carries the signing certificate, Apple's
intermediate and Apple's root. It is believed only when the chain holds link by link up to a
root certificate we were configured with, every certificate is valid at the time given, the
leaf and intermediate carry Apple's marker extensions, and the leaf's key signed the JWS.

Pure: the time is passed in. Written on ``cryptography`` rather than Apple's
``app-store-server-library``: the library's verifier is synchronous and also fetches OCSP
answers over the network on the request path; what it checks offline is this.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

LEAF_MARKER = x509.ObjectIdentifier("1.2.840.113635.100.6.11.1")
"""Apple's marker on the certificate that signs App Store data."""
INTERMEDIATE_MARKER = x509.ObjectIdentifier("1.2.840.113635.100.6.2.1")
"""Apple's marker on the Worldwide Developer Relations intermediate."""
MAX_TOKEN = 64 * 1024


class Unverified(Exception):
    """Signed data that cannot be believed; the reason says why."""


def load_roots(pems: Sequence[str]) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(pem.strip().encode()) for pem in pems if pem.strip()]


def decode_segment(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Unverified("a segment is not base64url") from exc


def verified_payload(token: str, roots: Sequence[x509.Certificate], now: dt.datetime) -> Any:
    """The JSON payload of ``token`` once every check passes; Unverified otherwise."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise Unverified("not a JWS of a sensible size")
    parts = token.split(".")
    if len(parts) != 3:
        raise Unverified("not a compact JWS")
    header = _json(decode_segment(parts[0]), "header")
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        raise Unverified("alg is not ES256")
    chain = _certificates(header.get("x5c"))
    _check_chain(chain, roots, now)
    signature = decode_segment(parts[2])
    if len(signature) != 64:
        raise Unverified("an ES256 signature is 64 bytes")
    der = encode_dss_signature(int.from_bytes(signature[:32]), int.from_bytes(signature[32:]))
    key = chain[0].public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Unverified("the signing certificate's key is not EC")
    try:
        key.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise Unverified("the JWS signature does not verify") from exc
    return _json(decode_segment(parts[1]), "payload")


def _json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Unverified(f"the {what} is not JSON") from exc


def _certificates(x5c: object) -> list[x509.Certificate]:
    if not isinstance(x5c, list) or not 2 <= len(x5c) <= 4:
        raise Unverified("x5c is not a chain of 2 to 4 certificates")
    chain = []
    for entry in x5c:
        try:
            chain.append(x509.load_der_x509_certificate(base64.b64decode(entry, validate=True)))
        except (TypeError, binascii.Error, ValueError) as exc:
            raise Unverified("an x5c entry is not a DER certificate") from exc
    return chain


def _check_chain(
    chain: list[x509.Certificate], roots: Sequence[x509.Certificate], now: dt.datetime
) -> None:
    trusted = {root.fingerprint(hashes.SHA256()) for root in roots}
    if chain[-1].fingerprint(hashes.SHA256()) not in trusted:
        raise Unverified("the chain does not end at a configured root certificate")
    for cert in chain:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise Unverified(f"certificate {cert.subject.rfc4514_string()} is not valid now")
    for child, parent in zip(chain, chain[1:], strict=False):
        _is_ca(parent)
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise Unverified(f"{child.subject.rfc4514_string()} is not issued by the next") from exc
    _marked(chain[0], LEAF_MARKER)
    if len(chain) > 2:
        _marked(chain[1], INTERMEDIATE_MARKER)


def _is_ca(cert: x509.Certificate) -> None:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as exc:
        raise Unverified("an issuer is not a CA") from exc
    if not constraints.ca:
        raise Unverified("an issuer is not a CA")


def _marked(cert: x509.Certificate, marker: x509.ObjectIdentifier) -> None:
    try:
        cert.extensions.get_extension_for_oid(marker)
    except x509.ExtensionNotFound as exc:
        raise Unverified(f"a certificate lacks Apple's marker {marker.dotted_string}") from exc
