"""How lwork wires its SIP trunk: its ``TrunkConfig`` from settings, and the trunk as the SIP legs
the call engine dials through (``lwork.calls.boundary.PhoneDialer``)."""

from __future__ import annotations

from lwork.calls.boundary import PhoneLeg, PhoneLegReports, TrunkUnavailable
from lwork.settings import SipSettings
from lwork.sip.trunk.config import NumberRule, TrunkConfig
from lwork.sip.trunk.legs import CallStateError
from lwork.sip.trunk.limits import TrunkBusy
from lwork.sip.trunk.user_agent import Trunk


def trunk_config(settings: SipSettings) -> TrunkConfig:
    return TrunkConfig(
        proxy_host=settings.proxy_host,
        proxy_port=settings.proxy_port,
        listen_host=settings.listen_host,
        listen_port=settings.listen_port,
        advertised_host=settings.advertised_host or None,
        transport=settings.transport,
        domain=settings.domain or None,
        registrar=settings.registrar or None,
        username=settings.username or None,
        password=settings.password.get_secret_value() or None,
        register_expires=settings.register_expires,
        codecs=tuple(settings.codecs),
        number_rules=tuple(NumberRule(strip, add) for strip, add in settings.number_rules),
        default_country_code=settings.default_country_code,
        dial_with_plus=settings.dial_with_plus,
        max_concurrent_calls=settings.max_concurrent_calls,
        calls_per_second=settings.calls_per_second,
        trusted_sources=tuple(settings.trusted_sources),
        options_interval_s=settings.options_interval_s,
        ring_timeout_s=settings.ring_timeout_s,
    )


class TrunkLegs:
    """``PhoneDialer`` over the trunk: its refusals become ``TrunkUnavailable``."""

    def __init__(self, trunk: Trunk) -> None:
        self.trunk = trunk

    async def dial(
        self, number: str, caller_id: str, sdp: str, listener: PhoneLegReports
    ) -> PhoneLeg:
        try:
            return await self.trunk.dial(number, caller_id, sdp, listener)
        except TrunkBusy as exc:
            raise TrunkUnavailable(f"trunk busy: {exc.limit}") from exc
        except (ValueError, CallStateError) as exc:
            raise TrunkUnavailable(str(exc)) from exc
