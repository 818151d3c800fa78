"""A call in progress and what the call service keeps beside its state machine."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from lwork.calls.model import Call
from lwork.calls.ports import SipLeg
from lwork.media.ng import CallStats
from lwork.sip.trunk_inbound import InboundCall


@dataclass
class Active:
    """A call and what the service keeps beside it."""

    call: Call
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    relay_ip: str = ""
    callee_port: int = 0
    offer_sdp: str = ""
    rssrc: str = field(default_factory=lambda: str(secrets.randbits(32)))
    stats: CallStats | None = None
    stats_at: float = -1e9
    packets_seen: dict[str, int] = field(default_factory=dict)
    sip_leg: SipLeg | None = None
    caller_id: str = ""
    inbound: InboundCall | None = None
    opdata: dict[str, Any] = field(default_factory=dict)
