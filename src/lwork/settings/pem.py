"""Keys and certificates named in the settings, inline or as files: read and parsed when the
settings load, so a missing file or a key that is not PEM stops the server at start-up with
the setting's name and the reason, never the content (a key's text must not reach a log)."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

LARGEST = 1 << 20
"""No key or certificate file is a mebibyte: a larger one is the wrong file."""


def read_pem(name: str, path: Path) -> str:
    """The ASCII text of the PEM file ``path`` (setting ``name``); ValueError if unreadable."""
    try:
        if path.stat().st_size > LARGEST:
            raise ValueError(f"{name}: too large to be a key file")
        return path.read_bytes().decode("ascii")
    except OSError as exc:
        raise ValueError(f"{name}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not a PEM file") from None


def check_private_key(name: str, pem: str) -> None:
    """ValueError unless ``pem`` is an unencrypted PEM RSA private key."""
    try:
        key = serialization.load_pem_private_key(pem.strip().encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(f"{name}: not a PEM RSA private key (or one with a password)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{name}: not an RSA key")


def check_public_key(name: str, pem: str) -> None:
    """ValueError unless ``pem`` is a PEM RSA public key or a certificate of one."""
    text = pem.strip().encode()
    try:
        key: object
        if b"BEGIN CERTIFICATE" in text:
            key = x509.load_pem_x509_certificate(text).public_key()
        else:
            key = serialization.load_pem_public_key(text)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(f"{name}: not a PEM public key or certificate") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError(f"{name}: not an RSA key")
