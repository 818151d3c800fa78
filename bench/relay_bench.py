"""Media relay benchmark: built-in relay vs rtpengine (userspace), same packets, same run.

For each relay and each load it sets up calls over ng, streams 172-byte RTP packets (12-byte
header + 160-byte payload carrying the send time) at 50 pps each way per call, and measures
relayed packets/s, loss and latency. `direct` (endpoints sending straight to each other, no
relay) is the reference for latency: added latency = relay percentile - direct percentile.
A `flood` run pushes one stream as fast as the generator can send. Prints one JSON line per
figure.

    python bench/relay_bench.py [--streams 1 1000] [--seconds 5] [--skip-rtpengine]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

from lwork.media.ng import NgClient
from lwork.media.sdp_min import build_sdp

HOST = "127.0.0.1"
PACKET_SIZE = 172
PPS_PER_DIRECTION = 50
_HEAD = struct.Struct("!BBHIIQ")  # RTP header + send time in ns


@dataclass
class Endpoint:
    sock: socket.socket
    target: tuple[str, int]
    ssrc: int
    seq: int = 0


@dataclass
class Result:
    sent: int
    received: int
    seconds: float
    latencies_ns: list[int]
    relay_cpu: float | None

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies_ns:
            return None
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _endpoint_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    return sock


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def _cpu_seconds(pid: int) -> float:
    """CPU time of the relay and of its worker processes (direct children)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int(_stat(int(entry))[1]) == pid:
                    pids.append(int(entry))
    total = 0
    for item in pids:
        with contextlib.suppress(OSError):
            fields = _stat(item)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def _relay_process(kind: str, ng_port: int) -> Iterator[int | None]:
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
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield process.pid
    finally:
        process.terminate()
        process.wait(10)


async def _setup_calls(
    ng_port: int | None, pairs: list[tuple[socket.socket, socket.socket]]
) -> list[tuple[Endpoint, Endpoint]]:
    calls = []
    if ng_port is None:
        for i, (a, b) in enumerate(pairs):
            calls.append(
                (Endpoint(a, b.getsockname(), 2 * i + 1), Endpoint(b, a.getsockname(), 2 * i + 2))
            )
        return calls
    async with NgClient(HOST, ng_port, timeout_s=0.5, retries=20) as ng:
        await ng.ping()
        for i, (a, b) in enumerate(pairs):
            call_id = f"bench-{i}"
            offer = await ng.offer(call_id, "a", build_sdp(HOST, a.getsockname()[1]))
            answer = await ng.answer(call_id, "a", "b", build_sdp(HOST, b.getsockname()[1]))
            calls.append(
                (
                    Endpoint(a, (HOST, answer.media.port), 2 * i + 1),
                    Endpoint(b, (HOST, offer.media.port), 2 * i + 2),
                )
            )
    return calls


def _run_load(
    endpoints: list[Endpoint],
    listeners: list[socket.socket],
    seconds: float,
    pid: int | None,
    flood: bool,
) -> Result:
    selector = selectors.EpollSelector()
    for sock in listeners:
        selector.register(sock, selectors.EVENT_READ)
    payload = bytes(PACKET_SIZE - _HEAD.size)
    latencies: list[int] = []
    sent = received = 0
    clock = time.monotonic_ns
    cpu_start = _cpu_seconds(pid) if pid else None
    start = time.monotonic()
    end = start + seconds
    # Spread each 20 ms round of sends over 1 ms slots so no burst dominates the latency.
    slots = 20
    per_slot = max(1, len(endpoints) // slots)
    next_slot = start
    cursor = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if flood:
            for endpoint in endpoints:
                for _ in range(32):
                    endpoint.seq = (endpoint.seq + 1) & 0xFFFF
                    header = _HEAD.pack(
                        0x80, 102, endpoint.seq, endpoint.seq * 160, endpoint.ssrc, clock()
                    )
                    try:
                        endpoint.sock.sendto(header + payload, endpoint.target)
                        sent += 1
                    except BlockingIOError:
                        break
        elif now >= next_slot:
            for _ in range(per_slot if len(endpoints) >= slots else len(endpoints)):
                endpoint = endpoints[cursor]
                cursor = (cursor + 1) % len(endpoints)
                endpoint.seq = (endpoint.seq + 1) & 0xFFFF
                header = _HEAD.pack(
                    0x80, 102, endpoint.seq, endpoint.seq * 160, endpoint.ssrc, clock()
                )
                with contextlib.suppress(BlockingIOError):
                    endpoint.sock.sendto(header + payload, endpoint.target)
                    sent += 1
            step = 0.02 / slots if len(endpoints) >= slots else 0.02
            next_slot += step
        timeout = 0 if flood else max(0.0, min(next_slot, end) - time.monotonic())
        for key, _ in selector.select(timeout):
            sock = cast(socket.socket, key.fileobj)
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    break
                received += 1
                latencies.append(clock() - _HEAD.unpack_from(data)[5])
    # drain what is still in flight
    drain_end = time.monotonic() + 0.3
    while time.monotonic() < drain_end:
        for key, _ in selector.select(0.05):
            sock = cast(socket.socket, key.fileobj)
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    break
                received += 1
                latencies.append(clock() - _HEAD.unpack_from(data)[5])
    relay_cpu = None
    if pid and cpu_start is not None:
        relay_cpu = (_cpu_seconds(pid) - cpu_start) / (time.monotonic() - start)
    selector.close()
    return Result(sent, received, seconds, latencies, relay_cpu)


def run_scenario(kind: str, streams: int, seconds: float, flood: bool) -> Result:
    pairs = [(_endpoint_socket(), _endpoint_socket()) for _ in range(streams)]
    ng_port = _free_port()  # after the endpoints, so none of them takes it meanwhile
    try:
        with _relay_process(kind, ng_port) as pid:
            calls = asyncio.run(_setup_calls(None if kind == "direct" else ng_port, pairs))
            endpoints = [e for call in calls for e in call]
            listeners = [e.sock for e in endpoints]
            # warm-up, paced in both directions: both sides latched (rtpengine waits for that)
            _run_load(endpoints, listeners, 0.5, pid, flood=False)
            if flood:
                endpoints = endpoints[:1]  # one direction, one stream, as fast as possible
            return _run_load(endpoints, listeners, seconds, pid, flood)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 1000])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--skip-rtpengine", action="store_true")
    parser.add_argument("--workers", type=int, default=2, help="also run builtin with N workers")
    args = parser.parse_args()
    relays = ["builtin"]
    if args.workers > 1:
        relays.append(f"builtinx{args.workers}")
    if not args.skip_rtpengine and shutil.which("rtpengine"):
        relays.append("rtpengine")
    for streams in args.streams:
        direct = run_scenario("direct", streams, args.seconds, flood=False)
        results = {kind: run_scenario(kind, streams, args.seconds, flood=False) for kind in relays}
        for kind, result in results.items():
            line = _figure(kind, streams, result, direct, "paced")
            if kind.startswith("builtin") and "rtpengine" in results:
                line["ratio_to_rtpengine_pps"] = _ratio(result, results["rtpengine"])
            print(json.dumps(line), flush=True)
    direct = run_scenario("direct", 1, args.seconds, flood=True)
    floods = {kind: run_scenario(kind, 1, args.seconds, flood=True) for kind in relays}
    for kind, result in floods.items():
        line = _figure(kind, 1, result, direct, "flood")
        if kind.startswith("builtin") and "rtpengine" in floods:
            line["ratio_to_rtpengine_pps"] = _ratio(result, floods["rtpengine"])
        print(json.dumps(line), flush=True)


def _ratio(ours: Result, theirs: Result) -> float | None:
    if not theirs.received:
        return None
    return round(ours.received / theirs.received, 3)


def _figure(
    kind: str, streams: int, result: Result, direct: Result, mode: str
) -> dict[str, object]:
    def r(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    p50, p99 = result.percentile_ms(0.5), result.percentile_ms(0.99)
    d50, d99 = direct.percentile_ms(0.5), direct.percentile_ms(0.99)
    return {
        "figure": f"relay_{mode}",
        "relay": kind.replace("builtinx", "builtin, workers="),
        "streams": streams,
        "packet_bytes": PACKET_SIZE,
        "seconds": result.seconds,
        "sent_pps": round(result.sent / result.seconds),
        "relayed_pps": round(result.received / result.seconds),
        "loss": r(1 - result.received / result.sent) if result.sent else None,
        "p50_ms": r(p50),
        "p99_ms": r(p99),
        "added_p50_ms": r(p50 - d50) if p50 is not None and d50 is not None else None,
        "added_p99_ms": r(p99 - d99) if p99 is not None and d99 is not None else None,
        "relay_cpu_cores": r(result.relay_cpu),
        "relay_cpu_us_per_packet": (
            r(result.relay_cpu * 1e6 / (result.received / result.seconds))
            if result.relay_cpu is not None and result.received
            else None
        ),
        "reference": {
            "direct_pps": round(direct.received / direct.seconds),
            "direct_p50_ms": r(d50),
            "direct_p99_ms": r(d99),
        },
    }


if __name__ == "__main__":
    main()
