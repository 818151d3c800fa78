"""``lwork serve`` with ``http.tls_cert``/``tls_key`` serves HTTPS (and nothing in clear), and
with ``log_format = "json"`` writes one JSON object a line with phone numbers cut to their last
four digits (issue #16 items 3 and 4)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fakes.servers import free_port

PHONE = "13800138000"


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lwork test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(
            "127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pkcs8 = serialization.PrivateFormat.PKCS8
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, pkcs8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


def trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    cert, key = self_signed(tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWORK_")}
    env.update(LWORK_DATA_DIR=str(tmp_path), LWORK_HTTP__TLS_CERT=str(cert),
               LWORK_HTTP__TLS_KEY=str(key), LWORK_LOG_FORMAT="json",
               LWORK_MEDIA__RELAY_MODE="inline")  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "lwork", "serve", "--port", str(port)],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"https://127.0.0.1:{port}/readyz", verify=trusting(cert)).is_success:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield port, cert, log
    finally:
        process.terminate()
        process.wait(30)


def test_https_with_the_configured_certificate_and_no_plain_http(
    tls_server: tuple[int, Path, Path],
) -> None:
    port, cert, _ = tls_server
    answer = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=trusting(cert))
    assert answer.status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=3)
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate
        httpx.get(f"https://127.0.0.1:{port}/healthz")


def test_json_log_lines_with_numbers_masked(tls_server: tuple[int, Path, Path]) -> None:
    port, cert, log = tls_server
    sent = httpx.post(f"https://127.0.0.1:{port}/lwork/sms/auth_code", verify=trusting(cert),
                      json={"uuid": PHONE, "type": "register"})  # fmt: skip
    assert sent.json() == {"status": "ok"}
    deadline = time.monotonic() + 10
    while "development SMS" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines and all({"ts", "level", "logger", "request_id", "msg"} <= set(e) for e in lines)
    sms = [e for e in lines if e["msg"].startswith("development SMS")]
    assert sms and "*******8000" in sms[0]["msg"] and sms[0]["request_id"] != "-"
    assert PHONE not in text


def test_tls_settings_go_in_pairs_and_must_exist(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWORK_")}
    env.update(LWORK_DATA_DIR=str(tmp_path), LWORK_HTTP__TLS_CERT=str(cert))
    run = subprocess.run([sys.executable, "-m", "lwork", "serve", "--port", str(free_port())],
                         env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and "tls_cert and http.tls_key go together" in run.stderr
    env.update(LWORK_HTTP__TLS_KEY=str(tmp_path / "missing.pem"))
    run = subprocess.run([sys.executable, "-m", "lwork", "serve", "--port", str(free_port())],
                         env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2 and "no such file" in run.stderr
