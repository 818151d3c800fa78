"""Configuration of the built-in media relay (`lwork relay`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lwork.media.ng.auth import SourcePolicy


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Everything the relay process needs; lwork's settings map onto these fields."""

    bind_host: str = "127.0.0.1"
    """Local address the RTP/RTCP sockets bind to (`0.0.0.0` for all IPv4 interfaces)."""
    advertised_address: str | None = None
    """Address written into rewritten SDP; defaults to `bind_host` (set it behind 1:1 NAT)."""
    ng_host: str = "127.0.0.1"
    """Address of the ng control socket. Keep it private: ng itself has no authentication."""
    ng_port: int = 2223
    """UDP port of the ng control socket (rtpengine's customary 2223); 0 picks a free port."""
    port_min: int = 30000
    """Lowest RTP port handed out (RTP ports are even, RTCP is RTP + 1)."""
    port_max: int = 40000
    """Highest port handed out, inclusive."""
    media_timeout_s: float = 60.0
    """A call with no RTP/RTCP on any leg for this long is deleted (rtpengine `timeout`)."""
    offer_timeout_s: float = 3600.0
    """A call that saw no media at all is deleted after this long (rtpengine `offer-timeout`)."""
    relatch_idle_s: float = 1.0
    """A new source address takes over a leg once the latched one was silent this long."""
    rtcp_interval_s: float = 5.0
    """Interval of the relay's own SR/RR toward each endpoint (also the loss-rate interval)."""
    clock_rate: int = 8000
    """RTP clock of the relayed codec (AMR-NB: 8000 Hz), for jitter in milliseconds."""
    tick_s: float = 0.02
    """Granularity of timers (RTCP generation, media timeout). Each tick's work stalls the
    packet path while it runs: short ticks keep that to a fraction of a millisecond."""
    ng_allowed_sources: tuple[str, ...] = ("127.0.0.0/8", "::1")
    """Addresses or networks ng requests are taken from; a datagram from anywhere else is
    dropped unanswered (no reflection) and counted."""
    ng_secret: str = field(default="", repr=False)
    """Shared secret: when set, each ng request must carry a fresh HMAC of itself in its cookie
    (`lwork.media.ng.auth`); unsigned or badly signed requests get an error. Empty: none."""
    ng_cache_s: float = 30.0
    """How long ng replies are kept to answer retransmitted requests (same cookie and same
    request) again; also how far a signed request's time may be from the relay's clock."""
    use_uvloop: bool = True
    """Run `run_relay` on uvloop when it is installed."""
    connected_peers: bool = True
    """Give each latched peer a connect()ed socket of its own on the leg's port: a cheaper
    packet path for up to twice the file descriptors. Off: one shared socket per port."""
    workers: int = 1
    """Relay processes sharing the work (one per core); >1 puts an ng router in front that
    splits the port range and routes each call-id to one worker."""
    max_leg_pps: int = 1000
    """Packets/s one phone may send into its leg (RTP and RTCP together, bursts of a second's
    worth allowed); the excess is dropped and counted as errors, so one flooding endpoint
    can neither take the relay's core from the other calls nor be amplified toward its peer.
    AMR sends 50/s. 0: no limit."""
    realtime_priority: int = 0
    """1-99: the processes that move packets run SCHED_FIFO at this priority (see
    `scheduling`); 0: normal scheduling."""
    transcoding: bool = False
    """Transcode calls whose one leg speaks AMR and the other G.711 (PCMA/PCMU), in worker
    processes of their own (`transcoding`); needs libopencore-amrnb, without which the relay
    logs why and forwards such calls as they are. Off: every call is forwarded."""
    transcode_workers: int = 1
    """Transcoding worker processes per relay process (each takes one core at most)."""

    @property
    def sdp_address(self) -> str:
        return self.advertised_address or self.bind_host

    def __post_init__(self) -> None:
        if not 0 < self.port_min < self.port_max <= 65535:
            raise ValueError("RelayConfig: need 0 < port_min < port_max <= 65535")
        if self.bind_host in ("0.0.0.0", "::", "") and not self.advertised_address:
            raise ValueError("RelayConfig: set advertised_address when binding to all interfaces")
        if self.workers < 1:
            raise ValueError("RelayConfig: workers must be >= 1")
        if self.transcode_workers < 1:
            raise ValueError("RelayConfig: transcode_workers must be >= 1")
        if self.max_leg_pps < 0:
            raise ValueError("RelayConfig: max_leg_pps must be >= 0")
        if not 0 <= self.realtime_priority <= 99:
            raise ValueError("RelayConfig: realtime_priority must be 0-99")
        if not self.ng_allowed_sources:
            raise ValueError("RelayConfig: ng_allowed_sources is empty: nobody could drive it")
        SourcePolicy(self.ng_allowed_sources)  # ValueError for a malformed entry
        if self.media_timeout_s <= 0 or self.rtcp_interval_s <= 0 or self.tick_s <= 0:
            raise ValueError("RelayConfig: timeouts and intervals must be positive")
