"""A transcoding worker: a process of its own that owns the sockets of the relay's transcoded
calls (app AMR <-> carrier G.711) and runs their packets through `codecs.transcoder`.

Why a process that takes over the sockets (SCM_RIGHTS), not one the relay hands packets to:
the relay's per-packet path stays exactly as it is for forwarded calls (no branch, no extra
hop), a transcoded packet costs the same two system calls as a forwarded one (no round trip
over a local socket: 4 more per packet, and a second wakeup), and the codec's CPU, ~30x a
forwarded packet's, is not spent in the process every other call waits on.

Each leg keeps the relay's rules through the same `Leg` class: latching, strict source, the
flood limit, packed datagrams (each packet once), RFC 3550 statistics. RTCP is terminated per
leg: what a party sends is read for its statistics (its RR about our stream, its SR for our
LSR/DLSR) and never forwarded, since it describes a stream the other party never receives;
each party gets our own SR about the stream we send it, with report blocks about what it sends.

Run by the relay (`transcoding.TranscoderPool`) as `python -m lwork.media.relay.transcode_worker
FD`; it exits when the relay closes its end of the control socket.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import secrets
import select
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from lwork.media.codecs.transcoder import AppToCarrier, CarrierToApp, Numbering
from lwork.media.relay import rtcp
from lwork.media.relay.leg_reports import own_report
from lwork.media.relay.session import Leg
from lwork.media.relay.token_bucket import TokenBucket
from lwork.media.relay.transcode_plan import Plan
from lwork.media.relay.transcode_wire import (
    MAX_MESSAGE,
    apply_signal,
    decode,
    encode,
    leg_state,
    plan_from_json,
)

log = logging.getLogger(__name__)
RECV_SIZE: Final = 4096
BATCH: Final = 1
"""Datagrams one socket reads per wakeup: a paced call has one waiting, and reading on until
EAGAIN would cost a system call and an exception per packet; what is left (a burst, a flood)
is reported again by the level-triggered epoll, the other calls' sockets in between."""
STATS_S: Final = 1.0
STATS_SLICES: Final = 10
"""Each call's figures go to the relay once per STATS_S, a tenth of the calls every 100 ms:
all of them at once (about 3 ms of JSON for 100 calls) held every packet waiting behind them,
and the relay's reading of them its forwarded calls."""
REPORT_CHECK_S: Final = 0.05
CALLS_PER_MESSAGE: Final = 16
APP, CARRIER = 0, 1
_TIMESTAMP: Final = struct.Struct("!I")


@dataclass(eq=False)
class Side:
    """One party of a transcoded call: its leg, its sockets, and what we send it."""

    leg: Leg
    rtp: socket.socket
    rtcp: socket.socket
    numbering: Numbering
    sent_packets: int = 0
    sent_octets: int = 0
    last_sent: tuple[int, float] | None = None
    """(RTP timestamp, time) of the newest packet sent: our SR's RTP timestamp follows it."""


@dataclass(eq=False)
class TranscodedCall:
    call_id: str
    plan: Plan
    sides: tuple[Side, Side]
    to_carrier: AppToCarrier
    to_app: CarrierToApp
    report_due: float = 0.0
    handlers: list[int] = field(default_factory=list)

    def counters(self) -> dict[str, Any]:
        return {
            "to_carrier": vars_of(self.to_carrier.counters),
            "to_app": vars_of(self.to_app.counters),
        }


def vars_of(counters: object) -> dict[str, int]:
    return {name: getattr(counters, name) for name in counters.__slots__}  # type: ignore[attr-defined]


class Worker:
    """The worker's calls and its one epoll loop."""

    def __init__(self, control: socket.socket, rtcp_interval_s: float, max_leg_pps: int) -> None:
        self.control = control
        self.rtcp_interval_s = rtcp_interval_s
        self.max_leg_pps = max_leg_pps
        self.epoll = select.epoll()
        self.calls: dict[str, TranscodedCall] = {}
        self.readers: dict[int, tuple[TranscodedCall, int, bool]] = {}
        self.running = True
        self.next_stats = 0.0
        self.next_reports = 0.0
        self.stats_round: deque[str] = deque()
        """Calls whose figures are still to go out in this STATS_S."""
        self.stats_tick = 0

    def run(self) -> None:
        self.control.setblocking(False)
        self.epoll.register(self.control.fileno(), select.EPOLLIN)
        while self.running:
            now = time.monotonic()
            timeout = max(0.0, min(self.next_stats - now, 0.05))
            for fd, _mask in self.epoll.poll(timeout):
                if fd == self.control.fileno():
                    self.on_control()
                    continue
                reader = self.readers.get(fd)
                if reader is not None:
                    call, side, is_rtcp = reader
                    if is_rtcp:
                        self.on_rtcp(call, side)
                    else:
                        self.on_rtp(call, side)
            now = time.monotonic()
            if now >= self.next_reports:
                # Not per wakeup: a walk over every call per packet would cost more than the
                # packet. The reports' own schedule is per call (`report_due`).
                self.next_reports = now + REPORT_CHECK_S
                self.send_reports(now)
            if now >= self.next_stats:
                self.next_stats = now + STATS_S / STATS_SLICES
                self.send_stats()

    # Control -------------------------------------------------------------------------------

    def on_control(self) -> None:
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.control, MAX_MESSAGE, 4)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.running = False
                return
            if not data:
                self.running = False  # the relay is gone: so are we
                for fd in fds:
                    with contextlib.suppress(OSError):
                        socket.close(fd)
                return
            try:
                self.handle(decode(data), fds)
            except Exception:  # a bad message must not take the other calls down
                log.exception("transcoding worker: bad control message")
                for fd in fds:
                    with contextlib.suppress(OSError):
                        socket.close(fd)

    def handle(self, message: dict[str, Any], fds: list[int]) -> None:
        op = message.get("op")
        if op == "add":
            self.add(message, fds)
        elif op == "update":
            call = self.calls.get(str(message["call"]))
            if call is not None:
                for side in call.sides:
                    if side.leg.rtp_port == int(message["leg"]["port"]):
                        apply_signal(side.leg, message["leg"])
        elif op == "delete":
            self.delete(str(message["call"]))
        else:
            raise ValueError(f"unknown op {op!r}")

    def add(self, message: dict[str, Any], fds: list[int]) -> None:
        if len(fds) != 4:
            raise ValueError("add: four sockets expected")
        call_id = str(message["call"])
        self.delete(call_id)  # handed again (the relay restarted a worker): start afresh
        plan = plan_from_json(message["plan"])
        socks = [socket.socket(fileno=fd) for fd in fds]
        now = time.monotonic()
        sides = []
        for index, signal in enumerate(message["legs"][:2]):
            leg = Leg(
                tag=str(signal["tag"]),
                rtp_port=int(signal["port"]),
                relay_ssrc=secrets.randbits(32),
                created=now,
                flood=TokenBucket(self.max_leg_pps, now) if self.max_leg_pps else None,
            )
            apply_signal(leg, signal)
            numbering = Numbering(secrets.randbits(32), secrets.randbits(16), secrets.randbits(32))
            sides.append(Side(leg, socks[2 * index], socks[2 * index + 1], numbering))
        app, carrier = sides[APP], sides[CARRIER]
        app.leg.other, carrier.leg.other = carrier.leg, app.leg
        to_carrier = AppToCarrier(
            carrier.numbering, amr_pt=plan.app.payload_type,
            octet_aligned=plan.app.octet_aligned, g711_codec=plan.carrier.encoding,
            g711_pt=plan.carrier.payload_type, event_in=plan.app.event_pt,
            event_out=plan.carrier.event_pt,
        )  # fmt: skip
        to_app = CarrierToApp(
            app.numbering, g711_codec=plan.carrier.encoding,
            g711_pt=plan.carrier.payload_type, amr_pt=plan.app.payload_type,
            octet_aligned=plan.app.octet_aligned, event_in=plan.carrier.event_pt,
            event_out=plan.app.event_pt,
        )  # fmt: skip
        call = TranscodedCall(call_id, plan, (app, carrier), to_carrier, to_app)
        call.report_due = now + self.rtcp_interval_s * random.random()
        self.calls[call_id] = call
        self.stats_round.append(call_id)  # its figures within this STATS_S, not the next
        for index, side in enumerate(call.sides):
            for sock, is_rtcp in ((side.rtp, False), (side.rtcp, True)):
                sock.setblocking(False)
                self.readers[sock.fileno()] = (call, index, is_rtcp)
                self.epoll.register(sock.fileno(), select.EPOLLIN)
                call.handlers.append(sock.fileno())

    def delete(self, call_id: str) -> None:
        call = self.calls.pop(call_id, None)
        if call is None:
            return
        for fd in call.handlers:
            self.readers.pop(fd, None)
            with contextlib.suppress(OSError):
                self.epoll.unregister(fd)
        for side in call.sides:
            side.rtp.close()  # our duplicates: the relay closes its own when it frees the port
            side.rtcp.close()

    # Media ---------------------------------------------------------------------------------

    def on_rtp(self, call: TranscodedCall, index: int) -> None:
        side = call.sides[index]
        other = call.sides[1 - index]
        leg = side.leg
        direction = call.to_carrier if index == APP else call.to_app
        for _ in range(BATCH):
            try:
                data, source = side.rtp.recvfrom(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                leg.rtp.errors += 1
                return
            now = time.monotonic()
            destination = leg.receive_rtp(data, source, now)
            if destination is not None:
                packets: list[bytes] = [data]
            elif leg.unpacked_to is not None:
                destination, packets = leg.unpacked_to, list(leg.unpacked)
                leg.unpacked_to = None
            else:
                continue
            for packet in packets:
                outputs = direction.receive(packet)
                if index == APP:  # the app hears the AMR payload format it speaks
                    call.to_app.octet_aligned = call.to_carrier.octet_aligned
                for out in outputs:
                    try:
                        other.rtp.sendto(out, destination)
                    except OSError:
                        other.leg.rtp.errors += 1
                        continue
                    other.sent_packets += 1
                    other.sent_octets += len(out) - 12
                    other.last_sent = (_TIMESTAMP.unpack_from(out, 4)[0], now)

    def on_rtcp(self, call: TranscodedCall, index: int) -> None:
        side = call.sides[index]
        for _ in range(BATCH):
            try:
                data, source = side.rtcp.recvfrom(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                side.leg.rtcp.errors += 1
                return
            # Read for the statistics, never forwarded: terminated on this leg.
            side.leg.receive_rtcp(data, source, time.monotonic())

    def send_reports(self, now: float) -> None:
        wall = time.time()
        for call in self.calls.values():
            if call.report_due > now:
                continue
            call.report_due = now + self.rtcp_interval_s * (0.5 + random.random())
            for side in call.sides:
                destination = side.leg.rtcp_destination()
                if destination is None or not (side.leg.rtp_peer or side.leg.rtcp_peer):
                    continue
                try:
                    side.rtcp.sendto(side_report(side, wall, now), destination)
                except OSError:
                    side.leg.rtcp.errors += 1

    def send_stats(self) -> None:
        """The next slice of this round's calls (STATS_SLICES a round): their figures to the
        relay. What is left of the round is spread over its slices left, so that a call added
        meanwhile is still reported within it."""
        left = STATS_SLICES - self.stats_tick % STATS_SLICES
        if left == STATS_SLICES:
            self.stats_round = deque(self.calls)
        self.stats_tick += 1
        count = -(-len(self.stats_round) // left)
        calls: list[TranscodedCall] = []
        while self.stats_round and len(calls) < count:
            call = self.calls.get(self.stats_round.popleft())
            if call is not None:  # not deleted since the round began
                calls.append(call)
        for start in range(0, len(calls), CALLS_PER_MESSAGE):
            batch = {
                call.call_id: {
                    "legs": {str(side.leg.rtp_port): leg_state(side.leg) for side in call.sides},
                    "transcoder": call.counters(),
                }
                for call in calls[start : start + CALLS_PER_MESSAGE]
            }
            try:
                self.control.send(encode({"op": "stats", "calls": batch}))
            except BlockingIOError:
                return  # the relay is busy: the next round's figures replace these
            except OSError:
                self.running = False
                return


def side_report(side: Side, wall: float, now: float) -> bytes:
    """Our compound SR + SDES toward one party about the stream we send it (RFC 3550 §6.4.1):
    the transcoded stream has its own SSRC, counts and timestamps."""
    rtp_ts = 0
    if side.last_sent is not None:
        timestamp, sent_at = side.last_sent
        rtp_ts = (timestamp + int((now - sent_at) * side.leg.clock_rate)) & 0xFFFF_FFFF
    return own_report(side.leg, rtcp.ntp_from_unix(wall), rtp_ts, now, side.numbering.ssrc,
                      side.sent_packets, side.sent_octets)  # fmt: skip


def below_the_relay() -> str | None:
    """Run one real-time priority below the relay that started us, if it runs real-time
    (`media.relay_realtime_priority`: SCHED_FIFO, which a child inherits). At the relay's own
    priority a worker busy with the codecs (50 us a packet, most of a core at 100 calls) would
    hold a shared core until it had nothing left to do, and the forwarded packets queued behind
    it; one below, the relay takes the core whenever a packet waits, and the worker still goes
    before ordinary work. At priority 1 there is nothing below: ordinary scheduling. Lowering
    one's own priority needs no privilege. Returns what changed, for the log."""
    policy = os.sched_getscheduler(0)
    if policy not in (os.SCHED_FIFO, os.SCHED_RR):
        return None
    priority = os.sched_getparam(0).sched_priority
    if priority > 1:
        os.sched_setscheduler(0, policy, os.sched_param(priority - 1))
        return f"real-time priority {priority - 1}, one below the relay's"
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    return "ordinary scheduling, below the relay's real-time priority 1"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m lwork.media.relay.transcode_worker")
    parser.add_argument("fd", type=int, help="the control socket (SOCK_SEQPACKET)")
    parser.add_argument("--rtcp-interval", type=float, default=5.0)
    parser.add_argument("--max-leg-pps", type=int, default=1000)
    args = parser.parse_args()
    from lwork.observability import setup_logging

    setup_logging("info")
    lowered = below_the_relay()
    if lowered is not None:
        log.info("transcoding worker: %s", lowered)
    control = socket.socket(fileno=args.fd)
    Worker(control, args.rtcp_interval, args.max_leg_pps).run()


if __name__ == "__main__":
    main()
