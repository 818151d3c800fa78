"""A fake App Store: a throwaway certificate chain shaped like Apple's (a root, a WWDR-like
intermediate with Apple's marker, a signing leaf with its marker; EC P-256), StoreKit 2 signed
transactions and App Store Server Notifications V2 signed with it as JWS (ES256, ``x5c``), and
a poster that sends a notification until it is answered 200, as Apple does.

The JWS is assembled here from the RFC 7515 layout, not with lwork's code."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

BUNDLE_ID = "com.example.lwork"
LEAF_MARKER = x509.ObjectIdentifier("1.2.840.113635.100.6.11.1")
INTERMEDIATE_MARKER = x509.ObjectIdentifier("1.2.840.113635.100.6.2.1")


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


Key = ec.EllipticCurvePrivateKey


def _cert(
    subject: str, key: Key, issuer: str, issuer_key: Key, ca: bool,
    marker: x509.ObjectIdentifier | None, valid_days: float = 365, broken: bool = False,
) -> x509.Certificate:  # fmt: skip
    """``broken``: its BasicConstraints extension holds bytes that are not DER, so it signs and
    loads but fails when its extensions are read."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=valid_days))
    )  # fmt: skip
    if broken:
        garbage = x509.UnrecognizedExtension(x509.OID_BASIC_CONSTRAINTS, b"\x30\x03\x01")
        builder = builder.add_extension(garbage, critical=True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    if marker is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(marker, b"\x05\x00"), False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class Chain:
    """Root → intermediate → leaf, the leaf's key that signs and the intermediate's."""

    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    intermediate_key: ec.EllipticCurvePrivateKey

    @classmethod
    def new(cls, *, leaf_days: float = 365, markers: bool = True,
            broken_extension: bool = False) -> Chain:  # fmt: skip
        """``broken_extension``: the intermediate and leaf do not parse beyond their DER."""
        root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
        root = _cert("Test Root CA - G3", root_key, "Test Root CA - G3", root_key, True, None)
        mid = _cert("Test WWDR CA G6", mid_key, "Test Root CA - G3", root_key, True,
                    INTERMEDIATE_MARKER if markers else None,
                    broken=broken_extension)  # fmt: skip
        leaf = _cert("Test StoreKit Signing", leaf_key, "Test WWDR CA G6", mid_key, False,
                     LEAF_MARKER if markers else None, valid_days=leaf_days,
                     broken=broken_extension)  # fmt: skip
        return cls(root, mid, leaf, leaf_key, mid_key)

    def issue_leaf(self, *, broken_extension: bool = False) -> Chain:
        """This chain with another signing leaf (and its key), issued by the intermediate."""
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = _cert("Test StoreKit Signing 2", key, "Test WWDR CA G6", self.intermediate_key,
                     False, LEAF_MARKER, broken=broken_extension)  # fmt: skip
        return Chain(self.root, self.intermediate, leaf, key, self.intermediate_key)

    def root_pem(self) -> str:
        return self.root.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, payload: dict[str, Any], *, x5c: list[x509.Certificate] | None = None,
             key: ec.EllipticCurvePrivateKey | None = None, alg: str = "ES256") -> str:  # fmt: skip
        certs = x5c if x5c is not None else [self.leaf, self.intermediate, self.root]
        header = {"alg": alg, "x5c": [base64.b64encode(c.public_bytes(
            serialization.Encoding.DER)).decode() for c in certs]}  # fmt: skip
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(payload).encode())}"
        )
        der = (key or self.key).sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64url(r.to_bytes(32) + s.to_bytes(32))}"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class FakeAppStore:
    chain: Chain = field(default_factory=Chain.new)
    environment: str = "Sandbox"
    attempts: list[httpx.Response] = field(default_factory=list)

    def transaction(self, product_id: str, **override: Any) -> dict[str, Any]:
        """A StoreKit 2 consumable purchase, as ``Transaction.jwsRepresentation`` decodes."""
        now_ms = int(time.time() * 1000)
        return {
            "transactionId": str(2000000000000000 + secrets.randbelow(10**12)),
            "originalTransactionId": str(2000000000000000 + secrets.randbelow(10**12)),
            "bundleId": BUNDLE_ID, "productId": product_id, "purchaseDate": now_ms,
            "originalPurchaseDate": now_ms, "quantity": 1, "type": "Consumable",
            "inAppOwnershipType": "PURCHASED", "signedDate": now_ms,
            "environment": self.environment, "transactionReason": "PURCHASE",
            "storefront": "CHN", "storefrontId": "143465", "price": 30000, "currency": "CNY",
            **override,
        }  # fmt: skip

    def notification(self, kind: str, transaction: dict[str, Any] | None,
                     **data_override: Any) -> bytes:  # fmt: skip
        data: dict[str, Any] = {"appAppleId": 1234567890, "bundleId": BUNDLE_ID,
                                "bundleVersion": "1.0", "environment": self.environment,
                                **data_override}  # fmt: skip
        if transaction is not None:
            data["signedTransactionInfo"] = self.chain.sign(transaction)
        payload = {"notificationType": kind, "notificationUUID": str(uuid.uuid4()), "data": data,
                   "version": "2.0", "signedDate": int(time.time() * 1000)}  # fmt: skip
        return json.dumps({"signedPayload": self.chain.sign(payload)}).encode()

    async def post(self, url: str, body: bytes, tries: int = 3) -> httpx.Response:
        """Post until answered 200 (Apple retries five times over days; we, briefly)."""
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(tries):
                r = await client.post(url, content=body,
                                      headers={"Content-Type": "application/json"})  # fmt: skip
                self.attempts.append(r)
                if r.status_code == 200:
                    break
        return r
