"""The fraud policy from the settings (used by the composition root and the CLI)."""

from __future__ import annotations

from lwork.fraud.defaults import group_limits, prefix_calls_per_minute
from lwork.fraud.prefixes import NumberPlan
from lwork.fraud.service import FraudPolicy
from lwork.settings import Settings
from lwork.sip.trunk.config import NumberRule


def fraud_policy(settings: Settings) -> FraudPolicy:
    section = settings.fraud
    production = settings.env == "production"
    return FraudPolicy(
        groups={
            "common": group_limits(section.common, production, pays_minutes=False),
            "dth": group_limits(section.dth, production, pays_minutes=True),
        },
        plan=NumberPlan(
            tuple(NumberRule(strip, add) for strip, add in settings.sip.number_rules),
            settings.sip.default_country_code or section.country_code,
        ),
        timezone=settings.billing.timezone,
        prefix_digits=section.prefix_digits,
        prefix_calls_per_minute=prefix_calls_per_minute(section, production),
        block_s=section.block_s,
        node=settings.node,
    )
