"""A call in progress: its bridge (the state, pure) and the I/O handles the engine keeps beside
it: the relay's view, the SIP dialogs, the apps' media addresses, when each leg was dialled
and answered."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from lwork.billing.rating import Tariff
from lwork.calls.boundary import PhoneLeg
from lwork.calls.bridge import CALLEE, CALLER, LOCAL, PHONE, REMOTE, Bridge, Shape
from lwork.media.ng.client import CallStats
from lwork.sip.trunk.inbound import InboundCall

RELAY_TAGS: dict[Shape, dict[str, str]] = {
    Shape.P2P: {CALLER: "caller", CALLEE: "callee", PHONE: "callee"},
    Shape.OUT: {CALLER: "caller", PHONE: "callee"},
    Shape.IN: {PHONE: "sip", CALLEE: "callee"},
    Shape.CALLBACK: {LOCAL: "local", REMOTE: "remote"},
}
"""Each leg's tag in the relay's session for the call (its ng from-tag or to-tag)."""


@dataclass
class LiveCall:
    sid: str
    bridge: Bridge
    account: str
    """The account the call belongs to: the caller's app, the called app, the callback's user."""
    numbers: dict[str, str]
    """The phone number (or app uuid) each leg reaches."""
    caller_id: str = ""
    """What the phone network is shown as the caller: a DID, or the account's uuid."""
    callee_uuid: str | None = None
    """The account of the invited app (p2p, in)."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    relay_ip: str = ""
    callee_port: int = 0
    rssrc: str = field(default_factory=lambda: str(secrets.randbits(32)))
    sdp_for: dict[str, str] = field(default_factory=dict)
    """The relay's SDP each SIP leg is to be dialled with."""
    carrier_codec: dict[str, str] = field(default_factory=dict)
    """The codec each SIP leg agreed with the carrier (``carrier_sdp.chosen_codec``)."""
    sip: dict[str, PhoneLeg] = field(default_factory=dict)
    """The SIP legs the engine dialled."""
    inbound: InboundCall | None = None
    """The phone's call that started an ``in`` call."""
    invitation: dict[str, Any] = field(default_factory=dict)
    """The ``p2p_inform_called`` event the invited app is sent."""
    answering: bool = False
    """The invited app's answer is being signalled to the relay (a second one is refused)."""
    callee_sid: str | None = None
    """The session id the answering app of a p2p call holds."""
    app_media: dict[str, tuple[str, int]] = field(default_factory=dict)
    """The media (host, port) last signalled to the relay for each app leg: the host is the
    app's HTTP address, where the relay expects its media."""
    started_wall: float = 0.0
    dialled_wall: dict[str, float] = field(default_factory=dict)
    answered_wall: dict[str, float] = field(default_factory=dict)
    """When each leg answered (wall clock): where its record's meter starts."""
    rang: bool = False
    """The other side has rung or answered (the call's set-up time is counted)."""
    tariff: Tariff | None = None
    """The tariff a reservation of the balance is held at (None: none held yet): the call is
    granted talk time and charged at it, the tariff when it was authorised."""
    invited: bool = False
    """An invitation or a warning may wait in a mailbox (taken back at the end)."""
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
    """When the ticker next needs to look at this call (0: at the next tick)."""

    @property
    def shape(self) -> Shape:
        return self.bridge.shape

    def tag(self, role: str) -> str:
        return RELAY_TAGS[self.bridge.shape][role]

    def set_stats(self, stats: CallStats, fresh_at: float) -> None:
        self.stats = stats
        self.stats_fresh_at = max(self.stats_fresh_at, fresh_at)
        self.views = {}
