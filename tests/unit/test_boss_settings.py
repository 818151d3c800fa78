"""The ``[boss]`` settings: keys of one or two long secrets, networks, secrets kept out of reprs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from lwork.settings import Settings, load_settings

SECRET = "a-long-enough-secret"


def test_a_toml_boss_section_and_its_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "lwork.toml"
    config.write_text(
        f'[boss]\nkeys = {{ billing = ["{SECRET}", "{SECRET}-next"] }}\n'
        'allowed_sources = ["10.1.0.0/16"]\nopen_minutes = 30\n'
    )
    # Through the environment, so the test leaves LWORK_CONFIG as it found it (load_settings
    # with a path would set it for the rest of the process, and for the CLI tests' children).
    monkeypatch.setenv("LWORK_CONFIG", str(config))
    monkeypatch.setenv("LWORK_BOSS__OPEN_MINUTES", "45")
    boss = load_settings().boss
    assert [s.get_secret_value() for s in boss.keys["billing"]] == [SECRET, SECRET + "-next"]
    assert boss.allowed_sources == ["10.1.0.0/16"] and boss.open_minutes == 45
    assert boss.window_s == 300
    assert SECRET not in repr(boss) and SECRET not in str(boss.model_dump())


@pytest.mark.parametrize(
    "boss",
    [
        {"keys": {"billing": []}},
        {"keys": {"billing": [SECRET, SECRET, SECRET]}},
        {"keys": {"billing": ["short"]}},
        {"allowed_sources": ["10.1.0.0/33"]},
        {"open_minutes": -1},
        {"nmsi_enabled": True},
        {"nmsi_enabled": True, "nmsi_user": "oss"},
        {"nmsi_enabled": True, "nmsi_password": "pw"},
        {"nmsi_port": 70000},
        {"nmsi_heartbeat_s": 0},
    ],
)
def test_bad_boss_settings_stop_the_start(boss: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(boss=boss)  # type: ignore[arg-type]


def test_nmsi_is_off_by_default_and_its_password_kept_out_of_reprs() -> None:
    assert Settings().boss.nmsi_enabled is False
    boss = Settings(boss={"nmsi_enabled": True, "nmsi_user": "oss",  # type: ignore[arg-type]
                          "nmsi_password": "nmsi-secret-pw"}).boss  # fmt: skip
    assert (boss.nmsi_port, boss.nmsi_password.get_secret_value()) == (5321, "nmsi-secret-pw")
    assert "nmsi-secret-pw" not in repr(boss) and "nmsi-secret-pw" not in str(boss.model_dump())
