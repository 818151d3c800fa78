"""The operator's billing system (BOSS) interface: who may call it, and with which keys."""

from __future__ import annotations

import ipaddress

from pydantic import Field, SecretStr, field_validator

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
    """Package minutes a newly opened ``dth`` account is given (0: none until a ``credit``)."""
    cdr_batch: int = Field(500, ge=1)
    """Call records read from the database per query while ``cdrs`` streams."""

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
