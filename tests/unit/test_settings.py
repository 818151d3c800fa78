from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from lwork.settings import Settings, load_settings


def test_defaults_run_a_development_server() -> None:
    settings = Settings()
    assert settings.http.port == 8080
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.sms.code_ttl_s == 600 and settings.sms.max_attempts == 5


def test_toml_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "lwork.toml"
    config.write_text('node = "edge7"\n[http]\nport = 9000\n[sms]\nper_number_per_day = 3\n')
    monkeypatch.setenv("LWORK_HTTP__PORT", "9100")
    monkeypatch.delenv("LWORK_CONFIG", raising=False)
    settings = load_settings(str(config))
    assert settings.node == "edge7"
    assert settings.http.port == 9100  # environment wins over the file
    assert settings.sms.per_number_per_day == 3


def test_unknown_keys_are_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "lwork.toml"
    config.write_text("[http]\nprot = 9000\n")
    monkeypatch.delenv("LWORK_CONFIG", raising=False)
    with pytest.raises(ValueError, match=r"http\.prot: Extra inputs are not permitted"):
        load_settings(str(config))


SECRET = "TOPSECRETAPIV3KEY0123456789abcdef"


@pytest.mark.parametrize(
    ("section", "place"),
    [
        # refused as a whole section: pydantic would quote the section's every value
        (
            f'[payments.wechat]\nenabled = true\nmch_id = "1900000001"\napi_v3_key = "{SECRET}"\n',
            "payments.wechat: Value error, payments.wechat is enabled without app_id",
        ),
        # refused as one field of the wrong type: pydantic would quote the field
        (f'[payments.wechat]\napi_v3_key = ["{SECRET}"]\n', "payments.wechat.api_v3_key"),
        (f'[boss]\nkeys = {{ op = ["{SECRET}", "{SECRET}x", "{SECRET}y"] }}\n', "boss.keys"),
    ],
)
def test_a_refused_section_never_shows_its_secrets(
    tmp_path: Path, section: str, place: str
) -> None:
    config = tmp_path / "lwork.toml"
    config.write_text(section)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LWORK_")}
    run = subprocess.run(
        [sys.executable, "-m", "lwork", "--config", str(config), "serve"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert run.returncode == 2
    assert f"lwork: invalid settings: {place}" in run.stderr
    for fragment in (SECRET, SECRET[-8:], SECRET[:8]):
        assert fragment not in run.stderr + run.stdout


def test_production_refuses_the_log_sms_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LWORK_CONFIG", raising=False)
    with pytest.raises(ValueError, match="development only"):
        load_settings(None, env="production")


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LWORK_CONFIG", raising=False)
    with pytest.raises(FileNotFoundError):
        load_settings("/nonexistent/lwork.toml")


def test_a_record_lease_must_outlast_two_heartbeats() -> None:
    assert Settings(calls={"cdr_heartbeat_s": 10, "cdr_lease_s": 20}).calls.cdr_lease_s == 20
    with pytest.raises(ValidationError, match="cdr_lease_s"):
        Settings(calls={"cdr_heartbeat_s": 15, "cdr_lease_s": 20})


def test_admin_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LWORK_ADMIN__LANGUAGE", "en")
    monkeypatch.setenv("LWORK_ADMIN__SESSION_TTL_S", "600")
    settings = load_settings()
    assert (settings.admin.language, settings.admin.session_ttl_s) == ("en", 600)
    assert settings.admin.enabled and settings.admin.cookie_name == "lwork_admin"
    for key, value in (("COOKIE_NAME", "a b;c"), ("LANGUAGE", "fr"), ("SESSION_TTL_S", "5")):
        monkeypatch.setenv(f"LWORK_ADMIN__{key}", value)
        with pytest.raises(ValueError, match=key.lower()):
            load_settings()
        monkeypatch.delenv(f"LWORK_ADMIN__{key}")


def test_a_config_file_given_once_is_not_every_later_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_settings(file) used to leave LWORK_CONFIG set, so every later Settings() of the
    process (the tests build hundreds) read that file too."""
    config = tmp_path / "lwork.toml"
    config.write_text('node = "edge7"\n')
    monkeypatch.delenv("LWORK_CONFIG", raising=False)
    assert load_settings(str(config)).node == "edge7"
    assert "LWORK_CONFIG" not in os.environ
    assert load_settings().node != "edge7"
