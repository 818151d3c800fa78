"""Media relay benchmark: built-in relay vs rtpengine (userspace), same packets, same run.

For each relay and each load it sets up calls over ng, streams 172-byte RTP packets (12-byte
header + 160-byte payload carrying the send time) at 50 pps each way per call, and measures
relayed packets/s, loss, latency and the relay's CPU per relayed packet. `direct` (endpoints
sending straight to each other, no relay) is the reference for latency: added latency = relay
percentile - direct percentile. A `flood` run pushes one stream as fast as the generator can
send. Prints one JSON line per figure.

The generator must out-run the relay, or the figure measures the generator: it batches its
syscalls with sendmmsg/recvmmsg (through ctypes) and lets many calls share each of its sockets
(a relay tells calls apart by its own ports, so endpoints may share an address); `--generators`
splits the calls over several processes.

    python -m bench.relay_bench [--streams 1 1000] [--seconds 5] [--skip-rtpengine] [--smoke]

Exits 1, saying why on stderr, when a relay relayed nothing, lost more than MAX_PACED_LOSS of a
paced load (packets failing, not a figure), or a figure is missing. ``--smoke``: 10 streams,
one-second runs, every relay and the flood, on the same code path, for CI. The open-files
limit is raised to the hard limit first: rtpengine, started from here, needs four descriptors
a call.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection

from bench._push_server import raise_fd_limit
from bench._verdict import Verdict
from lwork.media.ng.client import NgClient
from lwork.media.sdp_min import build_sdp

HOST = "127.0.0.1"
PACKET_SIZE = 172
PPS_PER_DIRECTION = 50
SLOTS = 20  # each 20 ms round of sends is spread over 1 ms slots, so no burst dominates
RECV_BATCH = 256
RECV_KEEP = 24  # bytes of each received datagram we look at: header + send time
WARMUP_S = 2.0
"""Paced both ways before the window: every leg latched (rtpengine waits for it), and the
backlog of latching 2,000 legs at once drained; the target is about calls in progress."""
RELAY_CORE = 0
"""With --pin (the default on 2+ cores) a single-process relay runs on this core and the
generators on the others, so neither steals the other's core and runs compare alike."""
SMOKE_WARMUP_S = 0.5
DRAIN_S = 0.3
WINDOW_S = 0.1
TARGET_ADDED_P99_MS = 2.0
MAX_PACED_LOSS = 0.01
"""More loss than this in a paced run fails the benchmark: the relay is losing calls' audio,
and its latency figures describe whatever got through."""
LATE_SLOT_NS = 1_000_000
"""A slot the generator reaches later than this is skipped, not sent late: catching up would
send several slots at once, a burst a thousand independent phones do not make, and the
relay's queue behind it would be the generator's stall, not latency the relay adds (direct
shows none: it has no queue). Skipped packets are counted and reported, never lost."""
_HEAD = struct.Struct("!BBHIIQ")  # RTP header + send time in ns (CLOCK_MONOTONIC, all processes)
_SENT_AT = struct.Struct("!Q")
_TIMESPEC = struct.Struct("=qq")
_MSG_DONTWAIT = 0x40
_SO_TIMESTAMPNS = 35  # Linux: each datagram carries its kernel arrival time (CLOCK_REALTIME)
_CMSG_SPACE = 32  # cmsghdr (16 bytes) + struct timespec (16 bytes)
_libc = ctypes.CDLL(None, use_errno=True)
_libc.sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
_libc.recvmmsg.argtypes = [
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_uint,
    ctypes.c_int,
    ctypes.c_void_p,
]


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.c_void_p),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("len", ctypes.c_uint)]


def _sockaddr(address: tuple[str, int]) -> bytes:
    family = struct.pack("=H", socket.AF_INET)
    return family + struct.pack("!H", address[1]) + socket.inet_aton(address[0]) + bytes(8)


class _Messages:
    """`count` prepared datagrams of `size` bytes in one buffer, with optional destinations."""

    def __init__(
        self, count: int, size: int, targets: list[tuple[str, int]] | None, control: int = 0
    ) -> None:
        self.buffer = (ctypes.c_char * (count * size))()
        self.iov = (_Iovec * count)()
        self.headers = (_MMsgHdr * count)()
        self.names = (ctypes.c_char * (16 * count))()
        self.control = (ctypes.c_char * max(1, control * count))()
        self.control_size = control
        base = ctypes.addressof(self.buffer)
        for i in range(count):
            self.iov[i].base, self.iov[i].len = base + i * size, size
            header = self.headers[i].hdr
            header.iov, header.iovlen = ctypes.addressof(self.iov[i]), 1
            if control:
                header.control = ctypes.addressof(self.control) + i * control
                header.controllen = control
            if targets is not None:
                ctypes.memmove(ctypes.addressof(self.names) + 16 * i, _sockaddr(targets[i]), 16)
                header.name = ctypes.addressof(self.names) + 16 * i
                header.namelen = 16

    def at(self, index: int) -> int:
        return ctypes.addressof(self.headers) + index * ctypes.sizeof(_MMsgHdr)


class _Sender:
    """One generator socket sending a fixed list of streams (target, SSRC) in slices."""

    def __init__(self, sock: socket.socket, targets: list[tuple[str, int]], ssrcs: list[int]):
        self.fd = sock.fileno()
        self.ssrcs = ssrcs
        self.messages = _Messages(len(targets), PACKET_SIZE, targets)

    def send(self, first: int, count: int, sequence: int, step: int, now: int) -> int:
        """Send streams [first, first + count) stamped `now`; packet i gets sequence + i * step."""
        buffer, ssrcs = self.messages.buffer, self.ssrcs
        for i in range(first, first + count):
            seq = (sequence + (i - first) * step) & 0xFFFF
            # +1 ns per packet: no two payloads alike (rtpengine takes repeats for a loop)
            sent_at = now + i - first
            _HEAD.pack_into(buffer, i * PACKET_SIZE, 0x80, 102, seq, seq * 160, ssrcs[i], sent_at)
        done: int = _libc.sendmmsg(self.fd, self.messages.at(first), count, _MSG_DONTWAIT)
        return max(0, done)  # -1: the socket buffer is full, nothing left


class _Receiver:
    """recvmmsg into a fixed ring; keeps the latency of packets sent inside the window.

    A packet's arrival is the kernel's timestamp (SO_TIMESTAMPNS), not the time the generator
    got round to reading it: the generator reads once per 1 ms slot, in batches, and its own
    scheduling stays out of the relay's figure.
    """

    def __init__(self) -> None:
        self.messages = _Messages(RECV_BATCH, RECV_KEEP, None, _CMSG_SPACE)
        self.received = 0
        self.latencies = array.array("q")
        # CLOCK_REALTIME (the kernel's stamps) minus CLOCK_MONOTONIC (the send stamps)
        self.offset = time.time_ns() - time.monotonic_ns()

    def drain(self, fd: int, window: tuple[int, int]) -> None:
        messages, latencies = self.messages, self.latencies
        buffer, control, headers = messages.buffer, messages.control, messages.headers
        start, end = window
        while True:
            count = _libc.recvmmsg(fd, messages.at(0), RECV_BATCH, _MSG_DONTWAIT, None)
            if count <= 0:
                return
            fallback = time.time_ns()
            for i in range(count):
                (sent_at,) = _SENT_AT.unpack_from(buffer, i * RECV_KEEP + 12)
                header = headers[i].hdr
                arrived = fallback
                if header.controllen >= _CMSG_SPACE:
                    seconds, nanos = _TIMESPEC.unpack_from(control, i * _CMSG_SPACE + 16)
                    arrived = seconds * 1_000_000_000 + nanos
                header.controllen = _CMSG_SPACE  # the kernel wrote the length it used
                if start <= sent_at < end:
                    self.received += 1
                    latencies.append(arrived - self.offset - sent_at)
            if count < RECV_BATCH:
                return


@dataclass
class Calls:
    """One generator's share: its sockets and, per call, where each side sends.

    Calls are split into `blocks` contiguous blocks (one per 1 ms send slot); each block has a
    socket per side. Phones have a socket each; one socket for a thousand calls would make
    every relay send() wait on that socket's queue lock against the generator's reads.
    """

    sides_a: list[socket.socket]
    sides_b: list[socket.socket]
    a_targets: list[tuple[str, int]]
    b_targets: list[tuple[str, int]]
    first_ssrc: int

    @staticmethod
    def open(streams: int, first_ssrc: int) -> Calls:
        blocks = max(1, min(SLOTS, streams))
        return Calls(
            [_endpoint_socket() for _ in range(blocks)],
            [_endpoint_socket() for _ in range(blocks)],
            [],
            [],
            first_ssrc,
        )

    def block_of(self, call: int, calls: int) -> int:
        """The block (and socket) of call number `call` of `calls`: as _generate's slots."""
        blocks = len(self.sides_a)
        return next(k for k in range(blocks) if call < calls * (k + 1) // blocks)

    def close(self) -> None:
        for sock in (*self.sides_a, *self.sides_b):
            sock.close()


@dataclass
class Result:
    sent: int
    received: int
    seconds: float
    latencies_ns: list[int]
    relay_cpu: float | None
    generator_cpu: float
    window_p99s_ns: list[int]
    """p99 of each WINDOW_S of arrivals (by count, in arrival order): where a run's p99 comes
    from a few stalls rather than from every moment."""
    skipped: int = 0
    """Packets of slots the generator reached too late to send (LATE_SLOT_NS)."""

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies_ns:
            return None
        return (
            self.latencies_ns[min(len(self.latencies_ns) - 1, int(q * len(self.latencies_ns)))]
            / 1e6
        )


def _generate(
    calls: Calls, start: float, seconds: float, pps: int, flood: bool
) -> tuple[int, int, bytes, int]:
    """Warm-up, then the measured window; returns (sent, received, latencies, skipped) of the
    window."""
    n = len(calls.a_targets)
    ssrcs_a = [calls.first_ssrc + 2 * i for i in range(n)]
    ssrcs_b = [calls.first_ssrc + 2 * i + 1 for i in range(n)]
    slots = len(calls.sides_a)
    bounds = [(n * k // slots, n * (k + 1) // slots) for k in range(slots)]
    # per slot, its block's two senders (a block's calls share the block's sockets)
    senders = [
        (
            _Sender(calls.sides_a[k], calls.a_targets[first:last], ssrcs_a[first:last]),
            _Sender(calls.sides_b[k], calls.b_targets[first:last], ssrcs_b[first:last]),
        )
        for k, (first, last) in enumerate(bounds)
    ]
    flooder = _Sender(calls.sides_a[0], calls.a_targets[:1] * 64, ssrcs_a[:1] * 64)
    receiver = _Receiver()
    begin, end = start + _WARMUP[0], start + _WARMUP[0] + seconds
    window = (int(begin * 1e9), int(end * 1e9))
    slot_s = 1.0 / pps / slots
    sent = rounds = skipped = 0
    next_slot = start
    while time.monotonic() < start:
        time.sleep(0.001)
    ready = select.epoll()  # asked with timeout 0 only: which sockets to read, no wake-ups
    for sock in (*calls.sides_a, *calls.sides_b):
        ready.register(sock.fileno(), select.EPOLLIN)
    while True:
        now_ns = time.monotonic_ns()
        if now_ns >= window[1]:
            break
        in_window = now_ns >= window[0]
        if flood and in_window:
            sent += flooder.send(0, 64, rounds * 64, 1, now_ns)
            rounds += 1
        elif now_ns >= next_slot * 1e9:
            first, last = bounds[rounds % slots]
            if now_ns - next_slot * 1e9 > LATE_SLOT_NS:
                if in_window:
                    skipped += 2 * (last - first)
            else:
                for sender in senders[rounds % slots]:
                    done = sender.send(0, last - first, rounds // slots, 0, now_ns)
                    if in_window:
                        sent += done
            rounds += 1
            next_slot += slot_s
        # Asleep until the next slot, not woken by arrivals: a receiver asleep in epoll makes
        # every send() toward it wake it (an inter-processor interrupt, dear in a VM), a cost
        # the relay pays on loopback that it would not pay toward a NIC. Arrival times are the
        # kernel's, so reading late changes no latency.
        timeout = 0.0 if flood and in_window else max(0.0, min(next_slot, end) - time.monotonic())
        if timeout > 0:
            time.sleep(timeout)
        for fd, _ in ready.poll(0):
            receiver.drain(fd, window)
    drain_end = time.monotonic() + DRAIN_S
    while time.monotonic() < drain_end:
        time.sleep(0.01)
        for fd, _ in ready.poll(0):
            receiver.drain(fd, window)
    ready.close()
    return sent, receiver.received, receiver.latencies.tobytes(), skipped


def _generator_process(
    calls: Calls, start: float, seconds: float, pps: int, flood: bool, out: Connection
) -> None:
    out.send(_generate(calls, start, seconds, pps, flood))
    out.close()


_PIN = [True]
_REALTIME = [0]  # --realtime: SCHED_FIFO priority for both relays' packet threads
_WARMUP = [WARMUP_S]  # --smoke: shorter (a handful of calls latch at once)


def _pinning() -> bool:
    return _PIN[0] and (os.cpu_count() or 1) >= 2


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _endpoint_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    return sock


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def _cpu_seconds(pids: list[int], children_of: int | None = None) -> float:
    """CPU time of `pids` and of the direct children of `children_of` (relay workers)."""
    pids = list(pids)
    if children_of is not None:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    if int(_stat(int(entry))[1]) == children_of:
                        pids.append(int(entry))
    total = 0
    for item in pids:
        with contextlib.suppress(OSError):
            fields = _stat(item)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _relay_process(kind: str, ng_port: int, flood: bool) -> Iterator[int | None]:
    if kind == "direct":
        yield None
        return
    if kind.startswith("builtin"):
        command = [
            sys.executable,
            "-m",
            "lwork.media.relay",
            "--ng",
            f"{HOST}:{ng_port}",
            "--ports",
            "20000-29999",  # below the ephemeral range the generator's sockets come from
            "--timeout",
            "600",
            "--workers",
            kind.partition("x")[2] or "1",
            "--max-leg-pps",
            "0" if flood else "1000",  # a flood measures the packet path, not the guard
            "--realtime-priority",
            # unpinned workers share the generator's core: real-time there starves the generator
            str(_REALTIME[0] if "x" not in kind else 0),
        ]
    else:
        command = [
            shutil.which("rtpengine") or "rtpengine",
            "--foreground",
            "--table=-1",
            "--interface=127.0.0.1",
            f"--listen-ng={HOST}:{ng_port}",
            "--port-min=10000",
            "--port-max=19999",
            "--log-level=2",
            "--log-stderr",
            "--delete-delay=0",
        ]
        if _REALTIME[0]:
            command += ["--scheduling=fifo", f"--priority={_REALTIME[0]}"]
    env = {**os.environ, "LWORK_INTERPRETED": "1" if kind == "builtin-interpreted" else ""}
    single_process = "x" not in kind  # --workers N spreads over every core by design
    pin = _pinning() and single_process
    log = tempfile.TemporaryFile()  # read only when the run fails
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        # in the child before exec: every thread rtpengine starts inherits the one core
        preexec_fn=(lambda: os.sched_setaffinity(0, {RELAY_CORE})) if pin else None,
    )
    try:
        yield process.pid
    except Exception as exc:
        log.seek(0)
        tail = log.read()[-1500:].decode(errors="replace")
        raise RuntimeError(
            f"{kind} relay, exit code {process.poll()} ({exc!r}); its stderr ends: {tail!r}"
        ) from exc
    finally:
        process.terminate()
        process.wait(10)
        log.close()


async def _setup_calls(ng_port: int | None, shares: list[Calls], streams: int) -> None:
    """Fill each share's targets: the relay ports from offer/answer, or each other (direct)."""
    per_share = [streams * k // len(shares) for k in range(len(shares) + 1)]
    async with contextlib.AsyncExitStack() as stack:
        ng = None
        if ng_port is not None:
            ng = await stack.enter_async_context(NgClient(HOST, ng_port, timeout_s=0.5, retries=20))
            await ng.ping()
        for k, share in enumerate(shares):
            first, last = per_share[k], per_share[k + 1]
            for i in range(first, last):
                block = share.block_of(i - first, last - first)
                a_port = share.sides_a[block].getsockname()[1]
                b_port = share.sides_b[block].getsockname()[1]
                if ng is None:
                    share.a_targets.append((HOST, b_port))
                    share.b_targets.append((HOST, a_port))
                    continue
                call_id = f"bench-{i}"
                offer = await ng.offer(call_id, "a", build_sdp(HOST, a_port))
                answer = await ng.answer(call_id, "a", "b", build_sdp(HOST, b_port))
                share.a_targets.append((HOST, answer.media.port))
                share.b_targets.append((HOST, offer.media.port))


def run_scenario(kind: str, streams: int, args: argparse.Namespace, flood: bool) -> Result:
    generators = min(args.generators, streams)
    per_share = [streams * k // generators for k in range(generators + 1)]
    shares = [
        Calls.open(per_share[k + 1] - per_share[k], 1 + 2 * streams * k) for k in range(generators)
    ]
    ng_port = _free_port()  # after the endpoints, so none of them takes it meanwhile
    context = multiprocessing.get_context("fork")
    try:
        with _relay_process(kind, ng_port, flood) as pid:
            asyncio.run(_setup_calls(None if kind == "direct" else ng_port, shares, streams))
            if flood:
                shares = shares[:1]
            start = time.monotonic() + 0.2
            pipes, processes = [], []
            for share in shares:
                receive, send = context.Pipe(duplex=False)
                process = context.Process(
                    target=_generator_process,
                    args=(share, start, args.seconds, args.pps, flood, send),
                )
                process.start()
                pipes.append(receive)
                processes.append(process)
            gen_pids = [p.pid for p in processes if p.pid is not None]
            if _pinning():
                others = set(range(os.cpu_count() or 1)) - {RELAY_CORE}
                for gen_pid in gen_pids:
                    os.sched_setaffinity(gen_pid, others)
            time.sleep(max(0.0, start + _WARMUP[0] - time.monotonic()))
            cpu_start = _cpu_seconds([pid], pid) if pid else None
            gen_start = _cpu_seconds(gen_pids)
            time.sleep(args.seconds)
            relay_cpu = (
                (_cpu_seconds([pid], pid) - cpu_start) / args.seconds
                if pid and cpu_start is not None
                else None
            )
            generator_cpu = (_cpu_seconds(gen_pids) - gen_start) / args.seconds
            sent = received = skipped = 0
            latencies = array.array("q")
            for receive in pipes:
                s, r, raw, k = receive.recv()
                sent, received, skipped = sent + s, received + r, skipped + k
                latencies.frombytes(raw)
            for process in processes:
                process.join(10)
            windows = _window_p99s(latencies, round(received / args.seconds * WINDOW_S))
            return Result(
                sent,
                received,
                args.seconds,
                sorted(latencies),
                relay_cpu,
                generator_cpu,
                windows,
                skipped,
            )
    finally:
        for share in shares:
            share.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, nargs="*", default=[1, 1000])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--skip-rtpengine", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="also run builtin with N workers")
    parser.add_argument("--generators", type=int, default=1, help="generator processes")
    parser.add_argument(
        "--pps", type=int, default=PPS_PER_DIRECTION, help="per stream and direction"
    )
    parser.add_argument("--no-flood", action="store_true")
    parser.add_argument(
        "--realtime",
        type=int,
        default=0,
        metavar="PRIORITY",
        help="run the pinned relays (built-in, rtpengine) SCHED_FIFO at this priority",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="let the scheduler place relay and generators"
    )
    parser.add_argument(
        "--interpreted", action="store_true", help="also run builtin from source (no mypyc)"
    )
    parser.add_argument("--smoke", action="store_true", help="a few seconds, tiny load (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.streams, args.seconds = [10], 1.0
        _WARMUP[0] = SMOKE_WARMUP_S
    raise_fd_limit()
    verdict = Verdict("relay")
    _PIN[0] = not args.no_pin
    _REALTIME[0] = args.realtime
    relays = ["builtin"]
    if args.interpreted:
        relays.append("builtin-interpreted")
    if args.workers > 1:
        relays.append(f"builtinx{args.workers}")
    if not args.skip_rtpengine and shutil.which("rtpengine"):
        relays.append("rtpengine")
    for streams in args.streams:
        direct = run_scenario("direct", streams, args, flood=False)
        verdict.emit(_figure("direct", streams, direct, direct, "paced", args))
        check_paced(verdict, "direct", streams, direct)
        results = {kind: run_scenario(kind, streams, args, flood=False) for kind in relays}
        for kind, result in results.items():
            line = _figure(kind, streams, result, direct, "paced", args)
            if kind.startswith("builtin") and "rtpengine" in results:
                line.update(_ratios(result, results["rtpengine"]))
            if kind == "builtin" and "builtin-interpreted" in results:
                line["ratio_to_interpreted_cpu_per_packet"] = _cpu_ratio(
                    result, results["builtin-interpreted"]
                )
            verdict.emit(line)
            check_paced(verdict, kind, streams, result)
    if args.no_flood:
        verdict.conclude()
        return
    direct = run_scenario("direct", 1, args, flood=True)
    floods = {kind: run_scenario(kind, 1, args, flood=True) for kind in relays}
    for kind, result in floods.items():
        line = _figure(kind, 1, result, direct, "flood", args)
        if kind.startswith("builtin") and "rtpengine" in floods:
            line.update(_ratios(result, floods["rtpengine"]))
        if kind == "rtpengine":
            # its log: "UDP receive queue exceeded 5 times: discarding packet"
            line["note"] = (
                "rtpengine's flood guard discards a port's packets once its receive queue "
                "held over 50 packets 5 times: no throughput figure to compare"
            )
        else:
            verdict.some(f"relay_flood {kind}", "packets relayed", result.received)
        verdict.emit(line)
    verdict.conclude()


def check_paced(verdict: Verdict, kind: str, streams: int, result: Result) -> None:
    name = f"relay_paced {kind} x{streams}"
    verdict.some(name, "packets relayed", result.received)
    loss = 1 - result.received / result.sent if result.sent else 1.0
    verdict.require(
        loss <= MAX_PACED_LOSS,
        name,
        f"lost {loss:.1%} of {result.sent} packets (at most {MAX_PACED_LOSS:.0%})",
    )


def _window_p99s(latencies: array.array[int], size: int) -> list[int]:
    """Each generator's arrivals are in order; with one generator (the default) a slice of
    `size` packets is WINDOW_S of arrivals."""
    size = max(1, size)
    p99s = []
    for first in range(0, len(latencies) - size + 1, size):
        window = sorted(latencies[first : first + size])
        p99s.append(window[int(0.99 * len(window))])
    return p99s


def _windows_within(result: Result, direct_p99_ms: float | None) -> float | None:
    """Share of WINDOW_S windows whose p99, less direct's p99 over the run, is within
    TARGET_ADDED_P99_MS."""
    if direct_p99_ms is None or not result.window_p99s_ns:
        return None
    limit_ns = (direct_p99_ms + TARGET_ADDED_P99_MS) * 1e6
    within = sum(1 for p99 in result.window_p99s_ns if p99 <= limit_ns)
    return round(within / len(result.window_p99s_ns), 3)


def _us_per_packet(result: Result) -> float | None:
    if result.relay_cpu is None or not result.received:
        return None
    return result.relay_cpu * 1e6 / (result.received / result.seconds)


def _ratios(ours: Result, theirs: Result) -> dict[str, object]:
    """Ours / rtpengine: relayed packets (higher is better), CPU per packet (lower is better)."""
    if theirs.received < 0.01 * theirs.sent:
        # rtpengine gives up on a socket whose queue holds more than 50 packets ("Too many
        # packets in UDP receive queue"): a flood stalls it, and a ratio would mean nothing.
        return {"ratio_to_rtpengine_pps": None, "rtpengine_stalled": True}
    pps = round(ours.received / theirs.received, 3) if theirs.received else None
    return {
        "ratio_to_rtpengine_pps": pps,
        "ratio_to_rtpengine_cpu_per_packet": _cpu_ratio(ours, theirs),
    }


def _cpu_ratio(ours: Result, theirs: Result) -> float | None:
    mine, other = _us_per_packet(ours), _us_per_packet(theirs)
    return round(mine / other, 3) if mine is not None and other else None


def _figure(
    kind: str, streams: int, result: Result, direct: Result, mode: str, args: argparse.Namespace
) -> dict[str, object]:
    def r(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    p50, p99 = result.percentile_ms(0.5), result.percentile_ms(0.99)
    d50, d99 = direct.percentile_ms(0.5), direct.percentile_ms(0.99)
    us = _us_per_packet(result)
    return {
        "figure": f"relay_{mode}",
        "relay": kind.replace("builtinx", "builtin, workers="),
        "streams": streams,
        "packet_bytes": PACKET_SIZE,
        "offered_pps_per_stream_direction": None if mode == "flood" else args.pps,
        "seconds": result.seconds,
        "generators": 1 if mode == "flood" else min(args.generators, streams),
        "sent_pps": round(result.sent / result.seconds),
        "relayed_pps": round(result.received / result.seconds),
        "loss": r(1 - result.received / result.sent) if result.sent else None,
        "p50_ms": r(p50),
        "p99_ms": r(p99),
        "added_p50_ms": r(p50 - d50) if p50 is not None and d50 is not None else None,
        "added_p99_ms": r(p99 - d99) if p99 is not None and d99 is not None else None,
        "windows_within_target": _windows_within(result, d99),
        "relay_cpu_cores": r(result.relay_cpu),
        "relay_cpu_us_per_packet": r(us),
        "one_core_capacity_pps": round(1e6 / us) if us else None,
        "generator_cpu_cores": r(result.generator_cpu),
        "generator_skipped": r(result.skipped / (result.sent + result.skipped))
        if result.sent
        else None,
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "pinned": _pinning() and "x" not in kind,
        "realtime_priority": _REALTIME[0] if "x" not in kind else 0,
        "reference": {
            "direct_pps": round(direct.received / direct.seconds),
            "direct_p50_ms": r(d50),
            "direct_p99_ms": r(d99),
        },
    }


if __name__ == "__main__":
    main()
