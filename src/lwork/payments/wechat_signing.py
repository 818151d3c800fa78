"""WeChat Pay API v3's signatures and encryption, as its documentation writes them (pure: no
I/O, no clock).

* A request is signed SHA256withRSA by the merchant's API key over
  ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n`` and carried in ``Authorization:
  WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,signature=…,timestamp=…,serial_no=…``.
* A reply or a notification is signed by WeChat Pay over ``TIMESTAMP\\nNONCE\\nBODY\\n``, in
  ``Wechatpay-Signature``, with the key whose serial is ``Wechatpay-Serial``.
* The app's payment parameters are signed by the merchant over
  ``APPID\\nTIMESTAMP\\nNONCESTR\\nPREPAYID\\n``.
* A notification's ``resource`` is AEAD_AES_256_GCM under the API v3 key, with its ``nonce``
  and ``associated_data``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEMA = "WECHATPAY2-SHA256-RSA2048"


class BadSignature(Exception):
    """A signature, key or ciphertext that cannot be believed; the reason says which."""


def request_message(method: str, path: str, timestamp: str, nonce: str, body: str) -> bytes:
    return f"{method}\n{path}\n{timestamp}\n{nonce}\n{body}\n".encode()


def reply_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def app_pay_message(app_id: str, timestamp: str, nonce: str, prepay_id: str) -> bytes:
    return f"{app_id}\n{timestamp}\n{nonce}\n{prepay_id}\n".encode()


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> None:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(),
                   hashes.SHA256())  # fmt: skip
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise BadSignature("signature does not verify") from exc


def authorization(mch_id: str, serial: str, nonce: str, timestamp: str, signature: str) -> str:
    return (f'{SCHEMA} mchid="{mch_id}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{serial}"')  # fmt: skip


def parse_authorization(header: str) -> dict[str, str]:
    """The fields of an ``Authorization`` header of this schema (what the fake WeChat reads)."""
    schema, _, rest = header.partition(" ")
    if schema != SCHEMA:
        raise BadSignature(f"schema {schema!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value.strip('"')
    return fields


def decrypt(api_v3_key: bytes, resource: Mapping[str, object]) -> bytes:
    """The plaintext of a notification's ``resource``; BadSignature if it was tampered with."""
    if resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise BadSignature(f"algorithm {resource.get('algorithm')!r}")
    ciphertext, nonce = resource.get("ciphertext"), resource.get("nonce")
    associated = resource.get("associated_data", "")
    if not (isinstance(ciphertext, str) and isinstance(nonce, str) and nonce
            and isinstance(associated, str)):  # fmt: skip
        raise BadSignature("resource without ciphertext or nonce")
    try:
        return AESGCM(api_v3_key).decrypt(
            nonce.encode(), base64.b64decode(ciphertext, validate=True), associated.encode()
        )
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise BadSignature("resource does not decrypt") from exc


def encrypt(api_v3_key: bytes, plaintext: bytes, nonce: str, associated: str) -> str:
    """``resource.ciphertext`` for ``plaintext`` (what WeChat does; the tests' fake uses it)."""
    sealed = AESGCM(api_v3_key).encrypt(nonce.encode(), plaintext, associated.encode())
    return base64.b64encode(sealed).decode()


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.strip().encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("payments.wechat.merchant_private_key is not an RSA key")
    return key


def load_public_keys(pems: Mapping[str, str]) -> dict[str, rsa.RSAPublicKey]:
    """The platform keys by serial; a certificate (``BEGIN CERTIFICATE``) gives its key."""
    from cryptography import x509

    keys: dict[str, rsa.RSAPublicKey] = {}
    for serial, pem in pems.items():
        text = pem.strip().encode()
        key: object
        if b"BEGIN CERTIFICATE" in text:
            key = x509.load_pem_x509_certificate(text).public_key()
        else:
            key = serialization.load_pem_public_key(text)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"payments.wechat.platform_keys[{serial}] is not an RSA key")
        keys[serial] = key
    return keys
