"""The relay's call table: offer/answer/delete, timers and DTMF scheduling. Pure.

Sockets are opened and closed through the injected `PortBinder`, so this module stays free of
I/O and is driven in tests by a binder that only records ports.
"""

from __future__ import annotations

import heapq
import ipaddress
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from lwork.media.relay import sdp_rewrite
from lwork.media.relay.config import RelayConfig
from lwork.media.relay.dtmf import ScheduledPacket, schedule_digit
from lwork.media.relay.leg_reports import own_report
from lwork.media.relay.ports import PortPool
from lwork.media.relay.rtcp import ntp_from_unix
from lwork.media.relay.session import Address, Leg
from lwork.media.relay.token_bucket import TokenBucket
from lwork.media.relay.transcode_plan import LegCodec, Plan, leg_codec, plan
from lwork.media.sdp_min import MediaAddress


class CallError(Exception):
    """A request the relay refuses; the message becomes the ng `error-reason`."""


class PortBinder(Protocol):
    """The I/O side of port allocation."""

    def open_pair(self, port: int) -> None:
        """Bind RTP `port` and RTCP `port + 1`; raise OSError if either is taken."""

    def attach(self, leg: Leg) -> None:
        """Start delivering datagrams on the leg's ports to the leg; called again when the
        signalling moved its latch, to drop what was connected to the old source."""

    def close_pair(self, port: int) -> None:
        """Close both sockets of the pair."""

    def transcode(self, call: Call, plan: Plan) -> bool:
        """Hand the call's sockets to a transcoding worker; False: this relay does not
        transcode (the call is forwarded as it is). Later `attach` calls for its legs pass
        their new signalling to the worker."""

    def untranscode(self, call: Call) -> None:
        """Take a transcoded call's sockets back from its worker: the call is forwarded again
        (a re-INVITE settled both legs on one codec)."""


@dataclass(eq=False, slots=True)
class Call:
    """Two legs sharing a call-id; the callee leg's tag is empty until `answer`."""

    call_id: str
    created_wall: float
    created: float
    last_signal_wall: float
    caller: Leg
    callee: Leg
    had_media: bool = False
    codecs: dict[int, LegCodec | None] = field(default_factory=dict)
    """Each leg's codec by its RTP port, as its SDP says (`transcode_plan`)."""
    transcoding: Plan | None = None
    """Set once the call's legs were found to speak AMR and G.711 and a worker took them."""
    transcoder: dict[str, dict[str, int]] = field(default_factory=dict)
    """The transcoder's counters per direction, as its worker last reported them."""

    def legs(self) -> tuple[Leg, Leg]:
        return (self.caller, self.callee)

    def leg_by_tag(self, tag: str) -> Leg | None:
        for leg in self.legs():
            if leg.tag == tag:
                return leg
        return None


@dataclass(slots=True)
class RelayTotals:
    """Process-wide counters for the `statistics` command."""

    managed: int = 0
    timed_out: int = 0
    deleted: int = 0
    rejected: int = 0


@dataclass(eq=False)
class CallTable:
    """All calls of one relay process."""

    config: RelayConfig
    binder: PortBinder
    new_ssrc: Callable[[], int]
    calls: dict[str, Call] = field(default_factory=dict)
    totals: RelayTotals = field(default_factory=RelayTotals)

    jitter: Callable[[], float] = random.random
    """Uniform in [0, 1): spreads each call's reports over the interval (RFC 3550 §6.3.1)."""

    def __post_init__(self) -> None:
        self.pool = PortPool(self.config.port_min, self.config.port_max)
        # (due, sequence, call): each call reports on its own schedule, so a thousand calls
        # do not build two thousand reports in one tick and stall the packet path.
        self._reports_due: list[tuple[float, int, Call]] = []
        self._sequence = itertools.count()
        self._sweep: list[str] = []
        """Call-ids the media-timeout sweep has still to look at in this round."""
        self.flooding: list[tuple[str, str, int]] = []
        """(call-id, tag, packets dropped since last noted) of legs over `max_leg_pps`, noted
        by the sweep for the server to log: the packet path itself never logs."""

    def offer(
        self,
        call_id: str,
        from_tag: str,
        sdp: str,
        options: sdp_rewrite.RewriteOptions,
        now: float,
        wall: float,
        strict_source: bool = False,
    ) -> str:
        """Register the caller's SDP; return it rewritten to the port the callee must use.
        `strict_source`: the leg latches only onto its SDP's host (see `session`)."""
        media = _describe(sdp)
        call = self.calls.get(call_id)
        if call is None:
            call = self._create(call_id, from_tag, now, wall)
        leg = call.leg_by_tag(from_tag)
        if leg is None:
            # An offer from the callee side (re-INVITE by the called party) swaps roles.
            if call.callee.tag in ("", from_tag):
                call.callee.tag = from_tag
                leg = call.callee
            else:
                raise CallError("Unknown from-tag for this call")
        _apply_media(leg, media)
        # A stand-in SDP without an address (a callback's party not called yet) says nothing
        # about the codec that party will speak.
        call.codecs[leg.rtp_port] = leg_codec(media) if _usable_host(media.ip) else None
        self._expect(leg, media.ip, strict_source)
        self._transcode(call, leg)
        call.last_signal_wall = wall
        assert leg.other is not None
        return sdp_rewrite.rewrite(sdp, self.config.sdp_address, leg.other.rtp_port, options)

    def answer(
        self,
        call_id: str,
        from_tag: str,
        to_tag: str,
        sdp: str,
        options: sdp_rewrite.RewriteOptions,
        wall: float,
        strict_source: bool = False,
    ) -> str:
        """Register the callee's SDP; return it rewritten to the port the caller must use."""
        media = _describe(sdp)
        call = self.calls.get(call_id)
        if call is None:
            raise CallError("Unknown call-id")
        if call.caller.tag == from_tag and call.callee.tag in ("", to_tag):
            call.callee.tag = to_tag
            leg = call.callee
        elif call.callee.tag == from_tag and call.caller.tag == to_tag:
            leg = call.caller  # answer to an offer the callee sent
        else:
            raise CallError("Unknown from-tag or to-tag for this call")
        _apply_media(leg, media)
        # A stand-in SDP without an address (a callback's party not called yet) says nothing
        # about the codec that party will speak.
        call.codecs[leg.rtp_port] = leg_codec(media) if _usable_host(media.ip) else None
        self._expect(leg, media.ip, strict_source)
        self._transcode(call, leg)
        call.last_signal_wall = wall
        assert leg.other is not None
        return sdp_rewrite.rewrite(sdp, self.config.sdp_address, leg.other.rtp_port, options)

    def _expect(self, leg: Leg, host: str, strict_source: bool) -> None:
        """Where the signalling says the leg's media comes from. Under strict source, a leg
        latched elsewhere lets go, so the new host's first packet takes it (a handover the
        signalling asked for: a phone on a new network, a carrier's re-INVITE)."""
        leg.strict_source = strict_source
        leg.expected_host = _usable_host(host)
        if not strict_source:
            return
        latched = [peer for peer in (leg.rtp_peer, leg.rtcp_peer) if peer is not None]
        if any(_usable_host(peer[0]) != leg.expected_host for peer in latched):
            leg.rtp_peer = leg.rtcp_peer = None
            leg.relatches += 1
            self.binder.attach(leg)

    def _transcode(self, call: Call, leg: Leg) -> None:
        """Transcode the call while its two legs speak AMR and G.711 (`transcode_plan`); a
        transcoded call's re-signalled leg goes to its worker (through `attach`). A leg
        re-signalled to another codec changes the plan: a carrier's re-INVITE to AMR makes
        the call forwarded again, one to the other G.711 law gives its worker the new plan."""
        caller, callee = call.caller.rtp_port, call.callee.rtp_port
        codecs = (call.codecs.get(caller), call.codecs.get(callee))
        wanted = plan(caller, codecs[0], callee, codecs[1])
        if call.transcoding is not None:
            # A stand-in SDP without a codec keeps what the call had.
            if wanted == call.transcoding or None in codecs:
                self.binder.attach(leg)
                return
            self.binder.untranscode(call)
            call.transcoding = None
            call.transcoder = {}
        if wanted is not None and self.binder.transcode(call, wanted):
            call.transcoding = wanted

    def delete(self, call_id: str) -> Call | None:
        call = self.calls.pop(call_id, None)
        if call is not None:
            for leg in call.legs():
                self.binder.close_pair(leg.rtp_port)
                self.pool.release(leg.rtp_port)
            self.totals.deleted += 1
        return call

    def _create(self, call_id: str, from_tag: str, now: float, wall: float) -> Call:
        ports: list[int] = []
        try:
            for _ in range(2):
                ports.append(self.pool.allocate(self.binder.open_pair))
        except Exception:
            for port in ports:
                self.binder.close_pair(port)
                self.pool.release(port)
            self.totals.rejected += 1
            raise
        caller = self._leg(from_tag, ports[0], now)
        callee = self._leg("", ports[1], now)
        caller.other, callee.other = callee, caller
        call = Call(call_id, wall, now, wall, caller, callee)
        self.calls[call_id] = call
        first = now + self.config.rtcp_interval_s * self.jitter()
        heapq.heappush(self._reports_due, (first, next(self._sequence), call))
        self.binder.attach(caller)
        self.binder.attach(callee)
        self.totals.managed += 1
        return call

    def _leg(self, tag: str, port: int, now: float) -> Leg:
        return Leg(
            tag=tag,
            rtp_port=port,
            relay_ssrc=self.new_ssrc(),
            created=now,
            clock_rate=self.config.clock_rate,
            relatch_idle_s=self.config.relatch_idle_s,
            flood=TokenBucket(self.config.max_leg_pps, now) if self.config.max_leg_pps else None,
            dtmf_sequence=self.new_ssrc() & 0xFFFF,
        )

    def expired(self, now: float, most: int | None = None) -> list[str]:
        """Call-ids whose media timed out; the caller deletes them. The same pass notes legs
        that went over `max_leg_pps` since it last looked at them (`flooding`).

        With `most`, only the next `most` calls of a round-robin sweep are looked at: a walk
        over every call in one go costs milliseconds at 1,000 calls, a pause every packet
        queued behind it would wait out.
        """
        if most is None:
            candidates = list(self.calls.values())
        else:
            most = max(1, most)
            if not self._sweep:
                self._sweep = list(self.calls)
            batch = self._sweep[-most:]
            del self._sweep[-most:]
            candidates = [call for call in map(self.calls.get, batch) if call is not None]
        dead = []
        for call in candidates:
            for leg in call.legs():
                if leg.flood_drops != leg.flood_noted:
                    self.flooding.append((call.call_id, leg.tag, leg.flood_drops - leg.flood_noted))
                    leg.flood_noted = leg.flood_drops
            last = max(call.caller.last_activity(), call.callee.last_activity())
            active = last > call.created
            limit = self.config.media_timeout_s if active else self.config.offer_timeout_s
            if now - last >= limit:
                dead.append(call.call_id)
        self.totals.timed_out += len(dead)
        return dead

    def rtcp_reports(self, now: float, wall: float) -> list[tuple[Leg, bytes, Address]]:
        """The relay's own SR toward every endpoint of the calls whose report is due; each
        call reports every 0.5-1.5 intervals, randomised as RFC 3550 §6.3.1 asks."""
        due = self._reports_due
        if not due or due[0][0] > now:
            return []
        ntp = ntp_from_unix(wall)
        rtp_ts = int(now * self.config.clock_rate) & 0xFFFF_FFFF
        interval = self.config.rtcp_interval_s
        out = []
        while due and due[0][0] <= now:
            _, _, call = heapq.heappop(due)
            if self.calls.get(call.call_id) is not call:
                continue  # deleted since
            if call.transcoding is not None:
                continue  # its worker reports on each leg itself, and for good
            for leg in call.legs():
                destination = leg.rtcp_destination()
                if destination is not None and (leg.rtp_peer or leg.rtcp_peer):
                    # What we send this party ourselves: only the DTMF we play (4 octets each).
                    sent = leg.dtmf_packets
                    report = own_report(leg, ntp, rtp_ts, now, leg.relay_ssrc, sent, sent * 4)
                    out.append((leg, report, destination))
            later = now + interval * (0.5 + self.jitter())
            heapq.heappush(due, (later, next(self._sequence), call))
        return out

    def play_dtmf(
        self,
        call_id: str,
        from_tag: str,
        code: int,
        duration_ms: int,
        volume: int,
        pause_ms: int,
        now: float,
    ) -> tuple[Leg, Address, list[ScheduledPacket], float]:
        """Events as if generated by `from_tag`, sent toward the other party.

        Returns the target leg, destination, packets and the start delay (queued digits wait
        for the previous one plus the pause).
        """
        call = self.calls.get(call_id)
        if call is None:
            raise CallError("Unknown call-id")
        source = call.leg_by_tag(from_tag)
        if source is None or source.other is None:
            raise CallError("Unknown from-tag for this call")
        target = source.other
        destination = target.rtp_destination()
        if destination is None:
            raise CallError("No media address known for the receiving party")
        packets, delay = schedule_digit(target, code, duration_ms, volume, pause_ms, now)
        return target, destination, packets, delay


def _describe(sdp: str) -> MediaAddress:
    try:
        return sdp_rewrite.describe(sdp)
    except ValueError as exc:
        raise CallError(f"Failed to parse SDP: {exc}") from exc


def _apply_media(leg: Leg, media: MediaAddress) -> None:
    leg.advertised = (media.ip, media.port) if media.port else None
    events = {pt for pt, enc in media.rtpmap.items() if enc.lower().startswith("telephone-event")}
    leg.telephone_event_pts = frozenset(events or {101})
    leg.clock_rate = _clock_rate(media) or leg.clock_rate


def _usable_host(host: str) -> str | None:
    """`host` as the sockets write it (canonical, IPv4 unmapped); None for what no packet can
    come from: an unspecified address (held, or not known yet) or a name."""
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return None if address.is_unspecified else str(address)


def _clock_rate(media: MediaAddress) -> int | None:
    """The RTP clock of the first (preferred) codec, for jitter in milliseconds."""
    if not media.payload_types:
        return None
    encoding = media.rtpmap.get(media.payload_types[0])
    if encoding is None:
        return 8000 if media.payload_types[0] < 96 else None  # static audio types: 8 kHz
    parts = encoding.split("/")
    if len(parts) >= 2 and parts[1].isdigit() and 1000 <= int(parts[1]) <= 192000:
        return int(parts[1])
    return None
