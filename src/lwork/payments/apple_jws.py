"""The App Store's signed data (StoreKit 2 transactions, App Store Server Notifications V2): a
compact JWS, ES256, whose header's ``x5c`` carries the signing certificate, Apple's
intermediate and Apple's root. It is believed only when the chain holds link by link up to a
root certificate we were configured with, every certificate is valid at the time given, the
leaf and intermediate carry Apple's marker extensions, and the leaf's key signed the JWS.

Pure but for ``Chains``' memory of the chains that held: the time is passed in. Written on
``cryptography`` rather than Apple's ``app-store-server-library``: the library's verifier is
synchronous and also fetches OCSP answers over the network on the request path; what it
checks offline is this.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.utils import CryptographyDeprecationWarning

LEAF_MARKER = x509.ObjectIdentifier("1.2.840.113635.100.6.11.1")
"""Apple's marker on the certificate that signs App Store data."""
INTERMEDIATE_MARKER = x509.ObjectIdentifier("1.2.840.113635.100.6.2.1")
"""Apple's marker on the Worldwide Developer Relations intermediate."""
MAX_TOKEN = 64 * 1024
CACHED_CHAINS = 64
"""Verified chains remembered (Apple uses a handful of signing certificates at a time)."""


class Unverified(Exception):
    """Signed data that cannot be believed; the reason says why."""


def load_roots(pems: Sequence[str]) -> list[x509.Certificate]:
    return [x509.load_pem_x509_certificate(pem.strip().encode()) for pem in pems if pem.strip()]


def decode_segment(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise Unverified("a segment is not base64url") from exc


@dataclass(frozen=True, slots=True)
class Walked:
    """A chain that held: its leaf's key, and when every certificate in it is valid."""

    key: ec.EllipticCurvePublicKey
    not_before: dt.datetime
    not_after: dt.datetime


class Chains:
    """The configured roots, and the chains already walked down from them, by their DER bytes:
    Apple signs everything with a few leaf certificates, so repeated notifications check the
    time against the remembered validity and verify only the JWS itself, not the chain's two
    signatures again. Only chains that held are kept (they are Apple's), the least recently
    used first forgotten."""

    def __init__(self, roots: Sequence[x509.Certificate], size: int = CACHED_CHAINS) -> None:
        self._roots = list(roots)
        self._size = size
        self._walked: OrderedDict[tuple[bytes, ...], Walked] = OrderedDict()
        self.walks = 0
        """Chains walked in full (not found here): how often the cache missed."""

    def signing_key(self, chain: Sequence[bytes], now: dt.datetime) -> ec.EllipticCurvePublicKey:
        known = tuple(chain)
        walked = self._walked.get(known)
        if walked is None:
            self.walks += 1
            walked = walk(chain, self._roots, now)
            self._walked[known] = walked
            if len(self._walked) > self._size:
                self._walked.popitem(last=False)
        else:
            self._walked.move_to_end(known)
        if not walked.not_before <= now <= walked.not_after:
            raise Unverified("a certificate of the chain is not valid now")
        return walked.key


def verified_payload(token: str, chains: Chains, now: dt.datetime) -> Any:
    """The JSON payload of ``token`` once every check passes; Unverified otherwise."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        raise Unverified("not a JWS of a sensible size")
    parts = token.split(".")
    if len(parts) != 3:
        raise Unverified("not a compact JWS")
    header = _json(decode_segment(parts[0]), "header")
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        raise Unverified("alg is not ES256")
    key = chains.signing_key(_der_chain(header.get("x5c")), now)
    signature = decode_segment(parts[2])
    if len(signature) != 64:
        raise Unverified("an ES256 signature is 64 bytes")
    der = encode_dss_signature(int.from_bytes(signature[:32]), int.from_bytes(signature[32:]))
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


def _der_chain(x5c: object) -> list[bytes]:
    """The x5c entries' DER bytes, leaf first (not yet parsed: see ``signing_key``)."""
    if not isinstance(x5c, list) or not 2 <= len(x5c) <= 4:
        raise Unverified("x5c is not a chain of 2 to 4 certificates")
    try:
        return [base64.b64decode(entry, validate=True) for entry in x5c]
    except (TypeError, binascii.Error, ValueError) as exc:
        raise Unverified("an x5c entry is not Base64") from exc


# What cryptography raises for a certificate it cannot read, whether at load or later when a
# field (extensions, key, signature algorithm) is first asked for.
_UNREADABLE = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    InvalidSignature,
    CryptographyDeprecationWarning,
)


def _load(der: bytes) -> x509.Certificate:
    # What cryptography still reads but only warns about (a negative serial number, which RFC
    # 5280 forbids and its next releases refuse) is no certificate of Apple's: refused now,
    # rather than whatever the warnings filter of the moment makes of it.
    with warnings.catch_warnings():
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        return x509.load_der_x509_certificate(der)


def walk(chain: Sequence[bytes], roots: Sequence[x509.Certificate], now: dt.datetime) -> Walked:
    """The leaf's P-256 key once the DER ``chain`` (leaf first) holds: it ends at a configured
    root, and walking down from there each certificate is issued by the one above (an issuer
    is a CA), is valid at ``now``, and the intermediate and leaf carry Apple's markers.

    The walk goes from the root down so that nothing is read beyond its signature until the
    certificate above vouched for it; anything that does not parse is Unverified."""
    trusted = {root.public_bytes(serialization.Encoding.DER): root for root in roots}
    parent = trusted.get(chain[-1])
    if parent is None:
        raise Unverified("the chain does not end at a configured root certificate")
    _valid(parent, now)
    not_before, not_after = parent.not_valid_before_utc, parent.not_valid_after_utc
    below_root = list(reversed(chain[:-1]))
    for depth, der in enumerate(below_root, 1):
        try:
            cert = _load(der)
            _is_ca(parent)
            cert.verify_directly_issued_by(parent)
        except Unverified:
            raise
        except _UNREADABLE as exc:
            raise Unverified(f"certificate {depth} below the root is not issued by it") from exc
        try:
            _valid(cert, now)
            not_before = max(not_before, cert.not_valid_before_utc)
            not_after = min(not_after, cert.not_valid_after_utc)
            if depth == len(below_root):
                _marked(cert, LEAF_MARKER)
                key = cert.public_key()
            elif depth == len(below_root) - 1:  # the leaf's issuer: Apple's WWDR intermediate
                _marked(cert, INTERMEDIATE_MARKER)
        except _UNREADABLE as exc:
            raise Unverified(f"certificate {depth} below the root does not parse") from exc
        parent = cert
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise Unverified("the signing certificate's key is not P-256")
    return Walked(key, not_before, not_after)


def _valid(cert: x509.Certificate, now: dt.datetime) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise Unverified(f"certificate {cert.serial_number} is not valid now")


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
