"""A call in progress and what the call service keeps beside its state machine."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from lwork.calls.model import Call
from lwork.calls.ports import SipLeg
from lwork.media.ng.client import CallStats
from lwork.sip.trunk.inbound import InboundCall


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
    """When a refresh of ``stats`` was last asked for."""
    stats_fresh_at: float = -1e9
    """When the refresh that gave ``stats`` was asked for: its figures are no older."""
    refreshing: asyncio.Future[None] | None = None
    """The batch that will bring the refresh asked for last (done once it has)."""
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The ``stats`` object each party's status shows, made once per refresh, not per read."""
    packets_seen: dict[str, int] = field(default_factory=dict)
    next_check: float = 0.0
    """When the timers next need to look at this call (0: at the next tick)."""
    sip_leg: SipLeg | None = None
    caller_id: str = ""
    inbound: InboundCall | None = None
    opdata: dict[str, Any] = field(default_factory=dict)
    answered_wall: float | None = None
    """Wall-clock time the SIP leg answered: where the CDR's meter starts."""
    app_media: dict[str, tuple[str, int]] = field(default_factory=dict)
    """The media (host, port) last signalled to the relay for each app party ("caller",
    "callee"): the host is the app's HTTP address, where the relay expects its media."""
    warned: bool = False
    """A talk-time warning went to the caller's mailbox (taken back when the call ends)."""

    def set_stats(self, stats: CallStats, fresh_at: float) -> None:
        self.stats = stats
        self.stats_fresh_at = max(self.stats_fresh_at, fresh_at)
        self.views = {}
