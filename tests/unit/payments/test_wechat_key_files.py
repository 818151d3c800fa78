"""WeChat Pay's keys as files (``apiclient_key.pem``, ``pub_key.pem``): a file that is missing
or not what it should be stops ``lwork serve`` when its settings load, naming the setting and
the reason, and never printing what the file holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lwork.settings import load_settings

from fakes.wechatpay import PLATFORM_SERIAL, new_key, private_pem, public_pem

SECRET = "TOPSECRET-0123456789abcdefghijklmnop"
"""What a wrong file holds: it must not reach the console or a log."""
PRIVATE = private_pem(new_key())
PUBLIC = public_pem(new_key())
EC_PRIVATE = (
    ec.generate_private_key(ec.SECP256R1())
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                   serialization.NoEncryption())
    .decode()
)  # fmt: skip


def config(
    tmp: Path, merchant: str | None, platform: str | None, inline: str = "", key_file: bool = True
) -> Path:
    """A configuration whose key files hold ``merchant`` and ``platform`` (None: no file);
    ``inline``: the merchant key written in the configuration too (or instead: ``key_file``
    False)."""
    key, pub = tmp / "apiclient_key.pem", tmp / "pub_key.pem"
    for path, text in ((key, merchant), (pub, platform)):
        if text is not None:
            path.write_text(text)
    lines = [
        "[payments.wechat]", "enabled = true", 'app_id = "wx8888888888888888"',
        'mch_id = "1900000109"', 'merchant_serial_no = "5157F09EFDC0"',
        'api_v3_key = "0123456789abcdef0123456789abcdef"',
        'notify_url = "https://pay.example.com/lwork/pay/notify/wechat"',
    ]  # fmt: skip
    if key_file:
        lines.append(f'merchant_private_key_file = "{key}"')
    if inline:
        lines.append(f'merchant_private_key = """{inline}"""')
    lines += ["[payments.wechat.platform_key_files]", f'"{PLATFORM_SERIAL}" = "{pub}"']
    path = tmp / "lwork.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def serve(path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWORK_")}
    return subprocess.run(
        [sys.executable, "-m", "lwork", "--config", str(path), "serve"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip


KEY = "payments.wechat.merchant_private_key_file"
PUB = f"payments.wechat.platform_key_files[{PLATFORM_SERIAL}]"


@pytest.mark.parametrize(
    ("merchant", "platform", "refusal"),
    [
        (None, PUBLIC, f"{KEY}: cannot be read (No such file or directory)"),
        (SECRET, PUBLIC, f"{KEY}: not a PEM RSA private key"),
        (PUBLIC, PUBLIC, f"{KEY}: not a PEM RSA private key"),
        (EC_PRIVATE, PUBLIC, f"{KEY}: not an RSA key"),
        (PRIVATE, None, f"{PUB}: cannot be read (No such file or directory)"),
        (PRIVATE, SECRET, f"{PUB}: not a PEM public key or certificate"),
        (PRIVATE, f"-----BEGIN CERTIFICATE-----\n{SECRET}\n-----END CERTIFICATE-----\n",
         f"{PUB}: not a PEM public key or certificate"),
        (PRIVATE, "é" + SECRET, f"{PUB}: not a PEM file"),
    ],
    ids=["no-key", "key-not-pem", "key-is-public", "key-not-rsa", "no-platform",
         "platform-not-pem", "platform-bad-certificate", "platform-not-ascii"],
)  # fmt: skip
def test_an_unreadable_key_file_stops_the_server_naming_the_setting_only(
    tmp_path: Path, merchant: str | None, platform: str | None, refusal: str
) -> None:
    run = serve(config(tmp_path, merchant, platform))
    assert run.returncode == 2
    assert f"lwork: invalid settings: payments.wechat: Value error, {refusal}" in run.stderr
    for fragment in (SECRET, SECRET[:12], SECRET[-12:], PRIVATE[40:80], PUBLIC[40:80]):
        assert fragment not in run.stderr + run.stdout


def test_an_inline_key_that_is_not_pem_is_refused_without_showing_it(tmp_path: Path) -> None:
    run = serve(config(tmp_path, None, PUBLIC, inline=SECRET, key_file=False))
    assert run.returncode == 2
    assert "payments.wechat.merchant_private_key: not a PEM RSA private key" in run.stderr
    assert SECRET[:12] not in run.stderr + run.stdout


def test_the_key_inline_and_as_a_file_is_refused(tmp_path: Path) -> None:
    run = serve(config(tmp_path, PRIVATE, PUBLIC, inline=PRIVATE))
    assert run.returncode == 2
    assert "merchant_private_key or merchant_private_key_file, not both" in run.stderr


def test_readable_key_files_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LWORK_CONFIG", "")  # load_settings sets it: restored after the test
    for name in [k for k in os.environ if k.startswith("LWORK_")]:
        monkeypatch.delenv(name)
    wechat = load_settings(str(config(tmp_path, PRIVATE, PUBLIC))).payments.wechat
    assert wechat.merchant_key_pem() == PRIVATE
    assert wechat.platform_pems() == {PLATFORM_SERIAL: PUBLIC}
