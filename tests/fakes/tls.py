"""TLS for the providers' loopback fakes: a certificate authority made once per test process
(so once per xdist worker), a server certificate it signs for 127.0.0.1, and an ASGI server that
serves HTTPS with it.

The real vendors are reached over HTTPS; the fakes are too, so the providers' TLS path (and the
``outbound_ca_file`` setting that makes them trust a private CA) is what the tests exercise. A
second, unrelated authority (``rogue_ca``) signs a certificate for the same address: a server
presenting it is what an attacker on the path would present, and must be refused.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import functools
import ipaddress
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fakes.servers import serve_asgi


@dataclass(frozen=True)
class FakeCa:
    """An authority's certificate and one server certificate (with its key) it issued."""

    ca_file: Path
    """The authority's certificate (PEM): what a client is told to trust."""
    cert_file: Path
    """The server's certificate (PEM), for 127.0.0.1 and localhost."""
    key_file: Path
    """The server's private key (PEM)."""

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this authority only."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _make(directory: Path, label: str) -> FakeCa:
    now = datetime.datetime.now(datetime.UTC)
    valid = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"lwork {label} test CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = FakeCa(directory / f"{label}-ca.pem", directory / f"{label}-server.pem",
                   directory / f"{label}-server.key")  # fmt: skip
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(_pem(key))
    files.key_file.chmod(0o600)
    return files


@functools.cache
def _directory() -> Path:
    path = Path(tempfile.mkdtemp(prefix="lwork-test-ca-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def lwork_ca() -> FakeCa:
    """The authority every fake's certificate comes from (made on first use)."""
    return _make(_directory(), "lwork")


@functools.cache
def rogue_ca() -> FakeCa:
    """An authority nobody trusts, issuing a certificate for the very same address."""
    return _make(_directory(), "rogue")


@contextlib.asynccontextmanager
async def serve_asgi_tls(app: Any, ca: FakeCa | None = None) -> AsyncIterator[str]:
    """Serve ``app`` over HTTPS on 127.0.0.1 (as ``serve_asgi`` does) with a certificate from
    ``ca`` (default: ``lwork_ca()``); yields ``https://127.0.0.1:<port>``."""
    ca = ca or lwork_ca()
    async with serve_asgi(app, tls=(str(ca.cert_file), str(ca.key_file))) as url:
        yield url
