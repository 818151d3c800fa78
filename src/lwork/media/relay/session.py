"""One relayed call: two legs, latching, forwarding decisions and per-leg statistics. Pure.

Theory of operation: each leg owns a local RTP/RTCP port pair. A packet arriving on leg A's
port is A's media; it is accounted in A's statistics and forwarded out of leg B's port toward
B's latched source address (or, before B has sent anything, toward the address in B's SDP).

Latching (symmetric RTP): a leg latches onto the source of its first packet. A packet from
another source re-latches the leg when it carries an SSRC already seen on the leg (the same
phone after a Wi-Fi -> LTE move) or when the latched source has been silent for
`relatch_idle_s`; otherwise it is dropped and counted, so a stray sender cannot hijack a call.

Strict source (rtpengine's `strict source` flag on the leg's offer/answer, which lwork always
sends): only packets from `expected_host`, the host of the leg's own SDP, may latch or
re-latch it, from any port (NAT picks the port; the rules above still decide a port change).
A stranger elsewhere can neither take the leg before the phone's first packet nor after it.
A new host takes over only when the signalling says so: a new offer/answer with its address
(`CallTable` then unlatches the leg). No usable address (none, 0.0.0.0, a host name): nothing
latches until signalling gives one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from lwork.media.relay import rtcp
from lwork.media.relay.redundant import SeenWindow, unpack
from lwork.media.relay.rtcp import ReportBlock, RtcpPacket
from lwork.media.relay.rtp import peek_header
from lwork.media.relay.stats import RemoteView, RttEstimator, StreamReceiver
from lwork.media.relay.token_bucket import TokenBucket

Address = tuple[str, int]
MAX_STREAMS_PER_LEG: Final = 16
"""SSRCs a leg keeps statistics for. A phone uses one or two per call (a new one after a
re-INVITE or a restart); a sender inventing SSRCs must not grow the relay's memory or its
`query` replies without bound: past the cap, the stream heard least recently is forgotten."""
_RTP_HEADER: Final = struct.Struct(
    "!BBHII"
).unpack_from  # V/P/X/CC, M/PT, sequence, timestamp, SSRC


@dataclass(slots=True)
class Counters:
    """Packets, bytes and dropped packets on one port."""

    packets: int = 0
    bytes: int = 0
    errors: int = 0
    last_packet: float | None = None


@dataclass(eq=False, slots=True)
class Leg:
    """One party of a call and the port pair the relay gave it."""

    tag: str
    rtp_port: int
    relay_ssrc: int
    created: float
    clock_rate: int = 8000
    relatch_idle_s: float = 1.0
    advertised: Address | None = None
    telephone_event_pts: frozenset[int] = frozenset({101})
    rtp_peer: Address | None = None
    rtcp_peer: Address | None = None
    rtp: Counters = field(default_factory=Counters)
    rtcp: Counters = field(default_factory=Counters)
    receivers: dict[int, StreamReceiver] = field(default_factory=dict)
    rtt: RttEstimator = field(default_factory=RttEstimator)
    remote_view: RemoteView | None = None
    last_sr: tuple[int, float] | None = None
    """(compact NTP of the endpoint's last SR, arrival time) for our LSR/DLSR."""
    relatches: int = 0
    strict_source: bool = False
    """Latch only onto `expected_host` (any port); see the module docstring."""
    expected_host: str | None = None
    """The host the signalling gave for this leg's media, canonical text; None: none usable."""
    foreign_drops: int = 0
    """Packets refused because, under strict source, they came from another host."""
    other: Leg | None = None
    sent_packets: int = 0
    sent_octets: int = 0
    dtmf_sequence: int = 0
    dtmf_packets: int = 0
    dtmf_busy_until: float = 0.0
    streams_forgotten: int = 0
    """SSRCs dropped from `receivers` at MAX_STREAMS_PER_LEG."""
    flood: TokenBucket | None = None
    """Packets/s (RTP and RTCP together) the latched phone may send; beyond, with a burst of
    one second's worth, packets are counted as errors and dropped. None: no limit."""
    flood_drops: int = 0
    flood_noted: int = 0
    seen: SeenWindow | None = None
    """Sequence numbers relayed lately, from the first packed datagram on (None before: a
    leg of single packets has no duplicates to filter and pays nothing for this)."""
    unpacked: list[bytes] = field(default_factory=list)
    """The packets of the packed datagram just received that are to be forwarded (each
    once, oldest first) toward `unpacked_to`; None: nothing to send."""
    unpacked_to: Address | None = None
    packed_datagrams: int = 0
    """Redundant datagrams (original-behavior.md §8) unpacked on this leg."""
    duplicates: int = 0
    """Packets dropped because the leg had relayed their sequence number already."""

    @property
    def rtcp_port(self) -> int:
        return self.rtp_port + 1

    def rtp_destination(self) -> Address | None:
        return self.rtp_peer or self.advertised

    def rtcp_destination(self) -> Address | None:
        if self.rtcp_peer is not None:
            return self.rtcp_peer
        if self.advertised is not None:
            return (self.advertised[0], self.advertised[1] + 1)
        return None

    def receive_rtp(self, data: bytes, source: Address, now: float) -> Address | None:
        """Account an RTP packet from `source`; return where to forward it, if anywhere.

        A source other than the latched one must pass the latching rules first; a malformed
        packet never moves the latch.
        """
        if source != self.rtp_peer:
            try:
                ssrc = _first_ssrc(data)
            except ValueError:
                self.rtp.errors += 1
                return None
            if not self._accept_source(ssrc, source, now):
                self.rtp.errors += 1
                return None
        return self.rtp_from_peer(data, now)

    def rtp_from_peer(self, data: bytes, now: float) -> Address | None:
        """`receive_rtp` for a packet known to come from the latched source (it arrived on a
        socket connected to it): the per-packet hot path, with `peek_header`'s checks inlined.
        """
        try:
            first, marker_pt, sequence, timestamp, ssrc = _RTP_HEADER(data)
        except struct.error:  # shorter than the fixed header
            self.rtp.errors += 1
            return None
        size = len(data)
        # 0x80: version 2, no padding/extension/CSRC, the common case decided in one compare.
        # A packed datagram never starts with 0x80 (its first byte is a count or a length of
        # 128: too long for a 20 ms AMR packet, and taken as plain RTP).
        if first != 0x80 and (
            first & 0xC0 != 0x80 or size < 12 + 4 * (first & 0x0F) or unpack(data) is not None
        ):
            self._not_plain(data, now)
            return None
        counters = self.rtp
        if self.flood is not None and self._over_rate(self.flood, now):
            counters.errors += 1
            return None
        return self._account(size, marker_pt, sequence, timestamp, ssrc, now)

    def _account(
        self, size: int, marker_pt: int, sequence: int, timestamp: int, ssrc: int, now: float
    ) -> Address | None:
        """Count one RTP packet from the latched source (each sequence number once, where
        packed datagrams repeat them) and say where it goes."""
        seen = self.seen
        if seen is not None and not seen.first_time(ssrc, sequence):
            self.duplicates += 1
            return None
        counters = self.rtp
        counters.packets += 1
        counters.bytes += size
        counters.last_packet = now
        try:
            receiver = self.receivers[ssrc]
        except KeyError:
            receiver = self._new_stream(ssrc, sequence, now)
        receiver.on_packet(
            sequence, timestamp, size, now, marker_pt & 0x7F not in self.telephone_event_pts
        )
        other = self.other
        if other is None:
            return None
        destination = other.rtp_peer or other.advertised
        if destination is not None:
            other.sent_packets += 1
            other.sent_octets += size
        return destination

    def _not_plain(self, data: bytes, now: float) -> None:
        """A datagram from the latched source that is not one plain RTP packet: a packed
        one is taken apart into `unpacked` (the caller sends them), anything else is counted
        as an error. None either way: the caller forwards no `data`."""
        self.unpacked_to = None
        packets = unpack(data)
        if packets is None:
            self.rtp.errors += 1
            return None
        if self.flood is not None and self._over_rate(self.flood, now):
            self.rtp.errors += 1  # one datagram, one token: the app sends 50 of them a second
            return None
        self.packed_datagrams += 1
        if self.seen is None:
            self.seen = seen = SeenWindow()
            ssrc = _RTP_HEADER(packets[0])[4]
            known = self.receivers.get(ssrc)
            if known is not None:
                seen.seed(ssrc, known.max_seq)
        unpacked = self.unpacked
        unpacked.clear()
        # The newest comes first: the oldest is relayed first, as it was sent.
        for packet in reversed(packets):
            destination = self._account_packed(packet, now)
            if destination is not None:
                unpacked.append(packet)
                self.unpacked_to = destination
        return None

    def _account_packed(self, packet: bytes, now: float) -> Address | None:
        """`rtp_from_peer`'s accounting for one packet out of a packed datagram (`unpack`
        checked its header)."""
        _first, marker_pt, sequence, timestamp, ssrc = _RTP_HEADER(packet)
        return self._account(len(packet), marker_pt, sequence, timestamp, ssrc, now)

    def _over_rate(self, flood: TokenBucket, now: float) -> bool:
        if flood.take(now):
            return False
        self.flood_drops += 1
        return True

    def _new_stream(self, ssrc: int, sequence: int, now: float) -> StreamReceiver:
        receivers = self.receivers
        if len(receivers) >= MAX_STREAMS_PER_LEG:
            del receivers[min(receivers.values(), key=_last_heard).ssrc]
            self.streams_forgotten += 1
        receiver = receivers[ssrc] = StreamReceiver(ssrc, self.clock_rate, sequence, now)
        return receiver

    def _foreign(self, host: str) -> bool:
        """Whether strict source refuses a packet from `host`; counts it if so."""
        if not self.strict_source:
            return False
        if host.startswith("::ffff:"):  # IPv4 on a dual-stack socket
            host = host[7:]
        if host == self.expected_host:
            return False
        self.foreign_drops += 1
        return True

    def _accept_source(self, ssrc: int, source: Address, now: float) -> bool:
        if self._foreign(source[0]):
            return False
        if self.rtp_peer is not None:
            last = self.rtp.last_packet
            moved = ssrc in self.receivers  # a stream we know, from a new address: handover
            idle = last is None or now - last >= self.relatch_idle_s
            if not (moved or idle):
                return False
            self.relatches += 1
            self.rtcp_peer = None  # the RTCP source moves with the phone; latch it afresh
        self.rtp_peer = source
        return True

    def receive_rtcp(self, data: bytes, source: Address, now: float) -> Address | None:
        """Process an RTCP datagram from `source`; return where to forward it."""
        flood = self.flood
        if flood is not None and source == self.rtcp_peer and self._over_rate(flood, now):
            self.rtcp.errors += 1
            return None
        try:
            packets = rtcp.parse_compound(data)
        except ValueError:
            self.rtcp.errors += 1
            return None
        if source != self.rtcp_peer:
            if self._foreign(source[0]):
                self.rtcp.errors += 1
                return None
            idle = (
                self.rtcp.last_packet is None or now - self.rtcp.last_packet >= self.relatch_idle_s
            )
            if self.rtcp_peer is not None and not idle and not self._from_known_ssrc(packets):
                self.rtcp.errors += 1
                return None
            self.rtcp_peer = source
        return self._account_rtcp(data, packets, now)

    def rtcp_from_peer(self, data: bytes, now: float) -> Address | None:
        """`receive_rtcp` for a datagram known to come from the latched RTCP source."""
        if self.flood is not None and self._over_rate(self.flood, now):
            self.rtcp.errors += 1
            return None
        try:
            packets = rtcp.parse_compound(data)
        except ValueError:
            self.rtcp.errors += 1
            return None
        return self._account_rtcp(data, packets, now)

    def _account_rtcp(self, data: bytes, packets: list[RtcpPacket], now: float) -> Address | None:
        self.rtcp.packets += 1
        self.rtcp.bytes += len(data)
        self.rtcp.last_packet = now
        for packet in packets:
            if isinstance(packet, rtcp.SenderReport):
                self.last_sr = (rtcp.ntp_middle32(packet.ntp_timestamp), now)
                self._absorb_blocks(packet.reports, now)
            elif isinstance(packet, rtcp.ReceiverReport):
                self._absorb_blocks(packet.reports, now)
        other = self.other
        if other is None:
            return None
        destination = other.rtcp_destination()
        if destination is not None:
            # An SR forwarded to the other party can be answered by its RR: that gives the
            # relay<->other RTT even when the relay's own SRs are ignored.
            for packet in packets:
                if isinstance(packet, rtcp.SenderReport):
                    other.rtt.sr_sent(rtcp.ntp_middle32(packet.ntp_timestamp), now)
        return destination

    def _from_known_ssrc(self, packets: list[RtcpPacket]) -> bool:
        for packet in packets:
            if isinstance(packet, rtcp.SenderReport | rtcp.ReceiverReport):
                return packet.ssrc in self.receivers
        return False

    def _absorb_blocks(self, blocks: tuple[ReportBlock, ...], now: float) -> None:
        for block in blocks:
            self.rtt.on_report(block, now)
            if block.ssrc not in self.receivers:
                # A report about a stream the relay sends to this party: the downstream view.
                self.remote_view = RemoteView.from_block(block, self.clock_rate)

    def main_receiver(self) -> StreamReceiver | None:
        """The stream with the most packets (a leg normally has one SSRC at a time)."""
        if not self.receivers:
            return None
        return max(self.receivers.values(), key=lambda r: r.received)

    def last_activity(self) -> float:
        return max(self.created, self.rtp.last_packet or 0.0, self.rtcp.last_packet or 0.0)


def _first_ssrc(data: bytes) -> int:
    """The SSRC a datagram's source is latched by: its own, or its packed packets' (an app
    sending only packed datagrams must latch like one sending single packets)."""
    if data and data[0] != 0x80:
        packets = unpack(data)
        if packets is not None:
            data = packets[0]
    return peek_header(data)[3]


def _last_heard(receiver: StreamReceiver) -> float:
    return receiver.first_arrival if receiver.last_arrival is None else receiver.last_arrival
