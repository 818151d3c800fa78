"""What ``env = "production"`` refuses at start-up: settings that are fine on a laptop and unsafe
on a service. Pure: takes the loaded settings, returns the problems, each naming its setting."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lwork.settings import Settings

MIN_SECRET_KEY_LENGTH = 32
"""Characters; 32 random ones from any reasonable alphabet carry well over 128 bits."""


def production_problems(settings: Settings) -> list[str]:
    """Every unsafe setting of a production ``settings``, as a message naming it (none: [])."""
    if settings.env != "production":
        return []
    problems = []
    key = settings.secret_key.get_secret_value()
    if not key:
        problems.append(
            "secret_key is empty: every node would make its own key file and SMS codes sent by "
            f"one node would fail on another; set one random key (≥ {MIN_SECRET_KEY_LENGTH} "
            "characters) on all nodes"
        )
    elif len(key) < MIN_SECRET_KEY_LENGTH:
        problems.append(
            f"secret_key is {len(key)} characters: use at least {MIN_SECRET_KEY_LENGTH} random ones"
        )
    if settings.sms.provider == "log":
        problems.append("sms.provider = 'log' is for development only; configure sms.provider")
    metrics = settings.metrics
    if metrics.enabled and not (
        metrics.token.get_secret_value() or metrics.allow_from or metrics.public
    ):
        problems.append(
            "/metrics would be open to the world: set metrics.token or metrics.allow_from "
            "(or metrics.public = true to allow it on purpose)"
        )
    test_pay = settings.payments.test
    if test_pay.enabled and not test_pay.allow_in_production:
        problems.append(
            "payments.test.enabled: anyone holding payments.test.secret can credit any order; "
            "turn it off (or set payments.test.allow_in_production = true on a staging service)"
        )
    return problems
