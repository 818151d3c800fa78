"""The operator's billing system (BOSS) interface: who may call it, and with which keys."""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr, field_validator, model_validator

from lwork.settings.sections import Section


class BossSettings(Section):
    keys: dict[str, list[SecretStr]] = {}
    """Key id → one or two secrets (two while rotating: the old and the new both verify).
    Requests name the key id in ``X-Lwork-Key``. Empty: every BOSS request is refused."""
    allowed_sources: list[str] = []
    """Addresses or CIDR networks the BOSS may call from (``10.1.0.0/16``). Empty: none.
    Behind a proxy, list the proxy in ``http.trusted_proxies`` so the BOSS's own address is
    checked."""
    window_s: int = Field(300, ge=1)
    """How far a request's ``X-Lwork-Timestamp`` may be from our clock, either way (seconds);
    a signature is accepted once within it."""
    body_limit: int = Field(16 * 1024, ge=256)
    """Largest BOSS request body, in bytes."""
    open_minutes: int = Field(0, ge=0)
    """Package minutes a newly opened ``dth`` account is given, without expiry (0: none until
    a ``credit`` or ``package``)."""
    cdr_batch: int = Field(500, ge=1)
    """Call records read from the database per query while ``cdrs`` streams."""
    cdr_webhook_url: str = ""
    """Where each closed call record is POSTed (JSON, the fields of ``cdrs``), signed as BOSS
    requests are; at least once, in order per account, retried with backoff until a 2xx
    (CONTRACT §9). Empty: no webhook (and no outbox is kept)."""
    cdr_webhook_key: str = ""
    """The key id of ``keys`` whose (first) secret signs the webhook's requests; empty: the
    first key id."""
    cdr_webhook_timeout_s: float = Field(10.0, gt=0)
    """How long one delivery may take before it counts as failed."""
    cdr_webhook_backoff_s: float = Field(1.0, gt=0)
    """The wait after a record's first failed delivery; it doubles with each failure (with
    jitter), up to ``cdr_webhook_backoff_max_s``."""
    cdr_webhook_backoff_max_s: float = Field(300.0, gt=0)
    """The longest wait between two deliveries of one record."""
    cdr_webhook_concurrency: int = Field(8, ge=1)
    """Accounts whose records are delivered at once (each account's one after another)."""
    cdr_webhook_batch: int = Field(1000, ge=1)
    """Due records read from the outbox per round (a round delivers them, then reads again)."""
    nmsi_enabled: bool = False
    """Serve NMSI, the original's TCP provisioning protocol, for BOSS systems that still speak
    it (CONTRACT §9). Needs ``nmsi_user`` and ``nmsi_password``."""
    nmsi_host: str = "127.0.0.1"
    """Address NMSI listens on (``0.0.0.0``: every interface; firewall it to the BOSS)."""
    nmsi_port: int = Field(5321, ge=0, le=65535)
    """NMSI's TCP port (the original's 5321; 0: any free port)."""
    nmsi_user: str = ""
    """The account of NMSI's two-stage login (key ``1`` of ``90000`` and ``2100``); the audit
    trail names NMSI actions ``nmsi:<user>``."""
    nmsi_password: SecretStr = SecretStr("")
    """Its password (key ``2``)."""
    nmsi_heartbeat_s: float = Field(120.0, gt=0)
    """The peer's heartbeat interval: silent for three of them, its connection is closed."""
    nmsi_max_frame: int = Field(64 * 1024, ge=256)
    """Largest NMSI frame, in bytes; a frame declaring more closes the connection."""

    @model_validator(mode="after")
    def _webhook_key(self) -> BossSettings:
        if self.cdr_webhook_url:
            if not self.cdr_webhook_url.startswith(("http://", "https://")):
                raise ValueError("boss.cdr_webhook_url must be an http:// or https:// URL")
            if not self.keys:
                raise ValueError("boss.cdr_webhook_url needs boss.keys to sign with")
            if self.cdr_webhook_key and self.cdr_webhook_key not in self.keys:
                raise ValueError(f"boss.cdr_webhook_key {self.cdr_webhook_key!r} is not in keys")
        return self

    @model_validator(mode="after")
    def _nmsi_login(self) -> BossSettings:
        if self.nmsi_enabled and not (self.nmsi_user and self.nmsi_password.get_secret_value()):
            raise ValueError("boss.nmsi_enabled needs boss.nmsi_user and boss.nmsi_password")
        return self

    @field_validator("keys")
    @classmethod
    def _one_or_two(cls, value: dict[str, list[SecretStr]]) -> dict[str, list[SecretStr]]:
        for key_id, secrets in value.items():
            if not 1 <= len(secrets) <= 2:
                raise ValueError(f"boss key {key_id!r} needs one or two secrets")
            if any(len(secret.get_secret_value()) < 16 for secret in secrets):
                raise ValueError(f"boss key {key_id!r}: secrets need 16 characters or more")
        return value

    @field_validator("allowed_sources")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry.strip(), strict=False)  # ValueError names the bad entry
        return value
