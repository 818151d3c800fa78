"""The one settings object: a TOML file (``--config`` / ``LWORK_CONFIG``) and ``LWORK_*`` env.

Environment variables override the file; nested keys use a double underscore, e.g.
``LWORK_DATABASE__URL=postgresql+asyncpg://…`` or ``LWORK_HTTP__PORT=8080``. Unknown keys are
rejected at start-up, so a typo in a config file fails loudly instead of being ignored.
Code below the composition root receives only the section it needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from lwork.settings.admin import AdminSettings
from lwork.settings.boss import BossSettings
from lwork.settings.fraud import FraudGroupSettings, FraudSettings
from lwork.settings.metrics import MetricsSettings
from lwork.settings.payments import PaymentSettings, ProductSettings, TestPaySettings
from lwork.settings.production import production_problems
from lwork.settings.push import (
    ApnsSettings,
    BaiduSettings,
    FcmSettings,
    PushSettings,
    RetrySettings,
)
from lwork.settings.sections import (
    AuthSettings,
    BillingSettings,
    BusSettings,
    CallSettings,
    DatabaseSettings,
    HttpSettings,
    MediaSettings,
    PresenceSettings,
    Section,
    SmsSettings,
)
from lwork.settings.sip import SipSettings

__all__ = [
    "AdminSettings",
    "ApnsSettings",
    "AuthSettings",
    "BaiduSettings",
    "BillingSettings",
    "BossSettings",
    "BusSettings",
    "CallSettings",
    "DatabaseSettings",
    "FcmSettings",
    "FraudGroupSettings",
    "FraudSettings",
    "HttpSettings",
    "MediaSettings",
    "MetricsSettings",
    "PaymentSettings",
    "PresenceSettings",
    "ProductSettings",
    "PushSettings",
    "RetrySettings",
    "Section",
    "Settings",
    "SipSettings",
    "SmsSettings",
    "TestPaySettings",
    "load_settings",
]


class Settings(BaseSettings):
    """All of lwork's knobs. Every field has a default that runs a development server."""

    model_config = SettingsConfigDict(
        env_prefix="LWORK_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    env: Literal["development", "production"] = "development"
    """``production`` refuses to start with development-only conveniences: an empty or short
    ``secret_key``, the log SMS provider, an unprotected ``/metrics``."""
    node: str = "n1"
    """This node's name: the prefix of call session ids, so any node can route a call request."""
    data_dir: Path = Path("./var")
    """Where the embedded SQLite database and other local state live."""
    log_level: str = "INFO"
    """Python logging level."""
    log_format: Literal["text", "json"] = "text"
    """``json``: one object a line (``ts``, ``level``, ``logger``, ``request_id``, ``call_id``
    when the line names a call, ``msg``, ``exc``) for a log shipper; ``text``: for people."""
    log_full_numbers: bool = False
    """Print phone numbers whole in the log. Off: every number of seven digits or more is cut
    to its last four (``*******8000``), in both formats and from every library's lines."""
    secret_key: SecretStr = SecretStr("")
    """Key for HMACs of SMS codes. Set the same value on every node; empty: generated once into
    ``data_dir/secret.key`` (fine for one node)."""
    outbound_ca_file: Path | None = None
    """A PEM bundle of the certificate authorities that lwork's outgoing HTTPS requests (push
    and SMS providers, the CDR webhook) trust, instead of the system's store. Unset: the
    system's store (``/etc/ssl/certs`` on Debian). For an egress proxy that inspects TLS, or
    for test fakes."""
    http: HttpSettings = HttpSettings()
    database: DatabaseSettings = DatabaseSettings()
    auth: AuthSettings = AuthSettings()
    sms: SmsSettings = SmsSettings()
    push: PushSettings = PushSettings()
    bus: BusSettings = BusSettings()
    calls: CallSettings = CallSettings()
    media: MediaSettings = MediaSettings()
    sip: SipSettings = SipSettings()
    presence: PresenceSettings = PresenceSettings()
    billing: BillingSettings = BillingSettings()
    fraud: FraudSettings = FraudSettings()
    metrics: MetricsSettings = MetricsSettings()
    payments: PaymentSettings = PaymentSettings()
    boss: BossSettings = BossSettings()
    admin: AdminSettings = AdminSettings()

    @field_validator("node")
    @classmethod
    def _node_is_plain(cls, value: str) -> str:
        if not value or "@" in value or "/" in value:
            raise ValueError("node must be non-empty without '@' or '/'")
        return value

    @field_validator("outbound_ca_file")
    @classmethod
    def _ca_file_readable(cls, value: Path | None) -> Path | None:
        # A missing bundle would fail every push and SMS at run time: refuse it at start-up.
        if value is not None and not value.is_file():
            raise ValueError(f"outbound_ca_file {value} is not a readable file")
        return value

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_dir / 'lwork.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = os.environ.get("LWORK_CONFIG")
        if path:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(path)))
        return tuple(sources)


def load_settings(config: str | None = None, **overrides: Any) -> Settings:
    """Load settings from ``config`` (or ``LWORK_CONFIG``) and the environment."""
    if config is None:
        config = os.environ.get("LWORK_CONFIG") or None
    if config is not None and not Path(config).is_file():
        raise FileNotFoundError(f"config file not found: {config}")
    try:
        settings = _settings_from(config, overrides)
    except ValidationError as exc:
        raise ValueError(refusal_without_input(exc)) from None
    problems = production_problems(settings)
    if problems:
        raise ValueError("env = 'production' refuses: " + "; ".join(problems))
    return settings


def _settings_from(config: str | None, overrides: dict[str, Any]) -> Settings:
    """``Settings`` read with ``config`` as the TOML file. The file reaches the settings source
    through ``LWORK_CONFIG`` for the construction only: left behind, it would become every later
    ``Settings()`` of the process's file too (tests build many)."""
    before = os.environ.get("LWORK_CONFIG")
    if config is not None:
        os.environ["LWORK_CONFIG"] = config
    try:
        return Settings(**overrides)
    finally:
        if before is None:
            os.environ.pop("LWORK_CONFIG", None)
        else:
            os.environ["LWORK_CONFIG"] = before


def refusal_without_input(exc: ValidationError) -> str:
    """Where and why the settings were refused, without what was written there.

    Pydantic's own message quotes the refused input, and for a section refused as a whole that
    is the section's every value: the tail of a private key or an API key would reach the
    console and the service's log.
    """
    lines = [
        f"{'.'.join(str(part) for part in error['loc']) or 'settings'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    ]
    return "; ".join(lines)
