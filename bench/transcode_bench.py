"""Transcoding benchmark: how many AMR <-> G.711 calls one transcoding worker (one core at
most: a single-threaded process) carries at 50 packets/s each way, and the latency it adds.

The relay runs as `python -m lwork.media.relay --transcode --transcode-workers 1`. For each
load, N calls are set up over ng (app leg AMR, carrier leg PCMA), then each call's app sends
the shipped AMR tone and its carrier 20 ms of PCMA every 20 ms, the calls spread evenly over
the 20 ms. Each received packet is matched to the packet it was made from by its sequence
number (one packet out per packet in, both ways) and its one-way time taken: send -> relay ->
worker -> receive, so an upper bound on the latency transcoding adds (loopback and the
generator's own delay included). The worker's CPU over the window (/proc) gives its share of
a core and the calls one core would carry at that load.

    python -m bench.transcode_bench [--calls 50 100 150] [--seconds 10] [--smoke] [--no-pesq]
                                    [--realtime PRIORITY]

Prints one JSON line per load. Exits 1 when a load lost more than 1 % of its packets.
Keep runs short on a shared machine: the generator needs a core of its own as well. Each line
has the 1-minute load average at its end (`loadavg_1m`): on a busy machine the worker is not
given the core it needs (`worker_core_share`), latency and loss say so, and its CPU per packet
(`worker_us_per_packet`, from /proc) is the figure to compare.

Before the loads, the reference (`"reference": "ffmpeg"`, one line): the ffmpeg command line
transcoding the calls' own AMR stream to PCMA (and back when its build has an AMR-NB encoder;
Debian's has not), CPU per 20 ms frame without its start-up, beside lwork's codecs alone on the
same frames in this process, to set against the worker's `worker_us_per_packet`. Then the
worker alone (`"figure": "worker_in_process"`): its CPU per packet measured in this process
with the packets queued for it (`in_process`), a figure the machine's load moves far less.

First, the listening quality (`speech_quality`): PESQ (ITU-T P.862 narrow-band) of speech
synthesised by espeak-ng, coded in AMR 12.2 as an app would, sent through the relay to a
carrier that answered PCMA (then PCMU) and echoes back what it hears, and decoded where the app
is: AMR 12.2 -> G.711 -> AMR 12.2. Beside it the same round trip through the codecs alone,
without the network: the ceiling the relay can only reach. One JSON line (`"pesq"`); exits 1
when the relay's figure is under 3.5. Skipped, with the reason on that line, without
espeak-ng, ffmpeg or the `pesq` package.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench import speech_quality
from lwork.media.codecs import amr_payload, amrnb, g711
from lwork.media.ng.client import NgClient
from lwork.media.sdp_min import build_sdp
from lwork.sim.amr import demo_clip

HOST = "127.0.0.1"
INTERVAL = 0.02
WARMUP_S = 2.0
SLOTS = 20
_HEADER = struct.Struct("!BBHII")
_TICK = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def _socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    return sock


async def _setup(ng_port: int, calls: int) -> list[tuple[socket.socket, socket.socket, int, int]]:
    """Per call: (app socket, carrier socket, relay port the app sends to, the carrier's)."""
    out = []
    async with NgClient(HOST, ng_port, timeout_s=2.0) as ng:
        for _ in range(50):
            if await ng.ping():
                break
            await asyncio.sleep(0.1)
        for n in range(calls):
            app, carrier = _socket(), _socket()
            call_id = f"bench-{n}"
            offer = await ng.offer(call_id, "app", build_sdp(HOST, app.getsockname()[1]))
            answer = await ng.answer(
                call_id, "app", "carrier",
                build_sdp(HOST, carrier.getsockname()[1], payload_type=8,
                          encoding="PCMA/8000", fmtp=None),
            )  # fmt: skip
            out.append((app, carrier, answer.media.port, offer.media.port))
    return out


def _payloads() -> tuple[list[bytes], bytes]:
    amr = [amr_payload.build([frame], False) for frame in demo_clip()]
    pcm = struct.pack("<160h", *(int(8000 * ((n % 18) / 9 - 1)) for n in range(160)))
    return amr, g711.alaw_encode(pcm)


PESQ_TARGET = 3.5
REFERENCE_FRAMES = 3000
"""Frames (a minute of audio) in ffmpeg's shorter run; its longer run has four times as many."""


def _ffmpeg_cpu(args: list[str], stream: bytes) -> tuple[float, bytes]:
    """CPU seconds (user + system) of one ffmpeg run, and its output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(args, input=stream, capture_output=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), out


def reference(frames_wanted: int) -> dict[str, object]:
    """ffmpeg transcoding the calls' own AMR stream (the shipped tone) to PCMA and, where its
    build has an AMR-NB encoder, back: CPU per 20 ms frame. Each direction runs twice, on
    `frames_wanted` frames and on four times as many: the difference over the extra frames is
    the per-frame cost, without ffmpeg's start-up. Beside it, in this process on the same
    frames, lwork's codecs alone (what the worker calls, without RTP and sockets)."""
    clip = demo_clip()
    repeat = -(-frames_wanted // len(clip))
    count = repeat * len(clip)
    result: dict[str, object] = {"reference": "ffmpeg", "frames": count}
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None or amrnb.available() is not None:
        result["skipped"] = "ffmpeg not installed" if ffmpeg is None else amrnb.available()
        return result
    common = [ffmpeg, "-hide_banner", "-loglevel", "error", "-threads", "1"]
    to_pcma = [*common, "-f", "amr", "-i", "-", "-f", "alaw", "-ar", "8000", "-"]

    def per_frame(args: list[str], stream: bytes, each: int) -> tuple[float, bytes]:
        short, out = _ffmpeg_cpu(args, stream[:each] if each else stream)
        long, _ = _ffmpeg_cpu(args, stream)
        return round(1e6 * (long - short) / (3 * count), 2), out

    amr_stream = b"#!AMR\n" + b"".join(clip) * 4 * repeat
    us, pcma = per_frame(to_pcma, amr_stream, 6 + len(amr_stream[6:]) // 4)
    if len(pcma) != 160 * count:
        raise RuntimeError(f"ffmpeg: {len(pcma)} bytes of PCMA for {count} frames")
    result["ffmpeg_amr_to_pcma_us_per_frame"] = us
    encoders = subprocess.run([ffmpeg, "-hide_banner", "-encoders"], capture_output=True).stdout
    if b"libopencore_amrnb" in encoders:
        to_amr = [*common, "-f", "alaw", "-ar", "8000", "-ac", "1", "-i", "-", "-c:a",
                  "libopencore_amrnb", "-b:a", "12.2k", "-f", "amr", "-"]  # fmt: skip
        result["ffmpeg_pcma_to_amr_us_per_frame"] = per_frame(to_amr, pcma * 4, len(pcma))[0]
    else:
        result["ffmpeg_pcma_to_amr_us_per_frame"] = None
        result["ffmpeg_pcma_to_amr"] = "this ffmpeg has no AMR-NB encoder (ffmpeg -encoders)"
    frames = clip * repeat
    decoder, encoder = amrnb.Decoder(), amrnb.Encoder()
    started = time.process_time()
    for frame in frames:
        g711.alaw_encode(decoder.decode(frame))
    there = time.process_time() - started
    started = time.process_time()
    for at in range(0, len(pcma), 160):
        encoder.encode(g711.alaw_decode(pcma[at : at + 160]))
    back = time.process_time() - started
    result["lwork_codecs_amr_to_pcma_us_per_frame"] = round(1e6 * there / count, 2)
    result["lwork_codecs_pcma_to_amr_us_per_frame"] = round(1e6 * back / count, 2)
    return result


IN_PROCESS_CALLS = 20
IN_PROCESS_BLOCK = 10
"""Rounds (one packet each way per call) queued before the worker runs over them."""


def in_process(rounds: int) -> dict[str, object]:
    """The worker's CPU per packet without the scheduler: a `transcode_worker.Worker` in this
    process, its calls handed over as the relay does (real sockets), IN_PROCESS_BLOCK rounds of
    packets queued on them, then the worker's own handler over what is ready (its loop without
    the timers), process time of that alone, best of three. Nothing waits to be woken (each
    sendto costs what it costs toward a busy peer), and no other process takes the core
    mid-packet, so this figure moves little with the machine's load, unlike the loads'."""
    from lwork.media.relay.transcode_plan import LegCodec, Plan
    from lwork.media.relay.transcode_wire import plan_to_json
    from lwork.media.relay.transcode_worker import Worker

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    worker = Worker(ours, rtcp_interval_s=5.0, max_leg_pps=0)
    calls: list[tuple[socket.socket, socket.socket, int, int]] = []
    for n in range(IN_PROCESS_CALLS):
        relay_side = [_socket() for _ in range(4)]
        app, carrier = _socket(), _socket()
        ports = [sock.getsockname()[1] for sock in relay_side]
        plan = Plan(ports[0], ports[2], LegCodec("AMR", 102), LegCodec("PCMA", 8))
        legs = [
            {"tag": tag, "port": port, "clock_rate": 8000, "advertised": list(peer.getsockname()),
             "strict": False, "expected_host": None, "rtp_peer": None, "rtcp_peer": None,
             "events": []}
            for tag, port, peer in (("app", ports[0], app), ("carrier", ports[2], carrier))
        ]  # fmt: skip
        message = {"op": "add", "call": f"in-{n}", "plan": plan_to_json(plan), "legs": legs}
        worker.add(message, [sock.detach() for sock in relay_side])
        calls.append((app, carrier, ports[0], ports[2]))
    amr, pcma = _payloads()
    sent = 0

    def block() -> tuple[float, int]:
        nonlocal sent
        for _ in range(IN_PROCESS_BLOCK):
            for index, (app, carrier, app_port, carrier_port) in enumerate(calls):
                header = (sent & 0xFFFF, 160 * sent)
                app.sendto(_HEADER.pack(0x80, 102, *header, 0xA000 + index)
                           + amr[sent % len(amr)], (HOST, app_port))  # fmt: skip
                carrier.sendto(_HEADER.pack(0x80, 8, *header, 0xC000 + index) + pcma,
                               (HOST, carrier_port))  # fmt: skip
            sent += 1
        started = time.process_time()
        while events := worker.epoll.poll(0):
            for fd, _mask in events:
                call, side, is_rtcp = worker.readers[fd]
                if is_rtcp:  # a stray datagram (a shared machine): read, or it stays ready
                    worker.on_rtcp(call, side)
                else:
                    worker.on_rtp(call, side)
        cpu = time.process_time() - started
        made = 0
        for app, carrier, _, _ in calls:
            for sock, payload_type in ((app, 102), (carrier, 8)):
                with contextlib.suppress(BlockingIOError):
                    while data := sock.recv(2048):
                        # What the worker made, not a stray datagram to a reused port.
                        made += len(data) > 12 and data[1] & 0x7F == payload_type
        return cpu, made

    try:
        block()  # the codecs' start-up
        best, made = float("inf"), 0
        for _ in range(3):
            cpu = got = 0
            for _ in range(max(1, rounds // IN_PROCESS_BLOCK)):
                spent, out = block()
                cpu, got = cpu + spent, got + out
            best, made = min(best, 1e6 * cpu / max(1, got)), made + got
    finally:
        for call_id in list(worker.calls):
            worker.delete(call_id)
        for app, carrier, _, _ in calls:
            app.close()
            carrier.close()
        worker.epoll.close()
        ours.close()
        theirs.close()
    expected = 3 * 2 * IN_PROCESS_CALLS * IN_PROCESS_BLOCK * max(1, rounds // IN_PROCESS_BLOCK)
    return {
        "figure": "worker_in_process", "calls": IN_PROCESS_CALLS, "packets": made,
        "packets_expected": expected, "worker_us_per_packet": round(best, 1),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }  # fmt: skip


_REALTIME = [0]
"""--realtime: the relay's SCHED_FIFO priority (its worker runs one below, the generator two
below, at least 1), as a deployment with media.relay_realtime_priority runs them."""


def _relay(ng_port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lwork.media.relay", "--ng", f"{HOST}:{ng_port}",
         "--ports", "36000-39999", "--transcode", "--transcode-workers", "1",
         "--max-leg-pps", "0", "--realtime-priority", str(_REALTIME[0])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


@contextlib.contextmanager
def _generator_scheduling() -> Iterator[None]:
    """The generator real-time too under --realtime (else it measures its own waits for a
    core), for the load's seconds only."""
    if not _REALTIME[0]:
        yield
        return
    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(max(1, _REALTIME[0] - 2)))
    try:
        yield
    finally:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def pesq(interval_s: float) -> dict[str, object]:
    """PESQ of AMR 12.2 -> PCMA/PCMU -> AMR 12.2 through the relay and through the codecs
    alone (module docstring)."""
    missing = speech_quality.missing()
    if missing is not None:
        return {"pesq": "skipped", "reason": missing}
    pcm = speech_quality.speech()
    frames = speech_quality.amr_frames(pcm)
    result: dict[str, object] = {
        "pesq": "P.862 narrow-band, MOS-LQO",
        "speech_s": round(len(pcm) / 2 / speech_quality.RATE, 2),
        "amr_12_2_alone": round(speech_quality.pesq_nb(pcm, speech_quality.decode_amr(
            list(frames))), 3),
    }  # fmt: skip
    ng_port = _free_port()
    relay = _relay(ng_port)
    try:
        for law in ("PCMA", "PCMU"):
            ceiling = speech_quality.codecs_alone(frames, law)
            got, echoed = asyncio.run(_round_trip(ng_port, frames, law, interval_s))
            key = f"amr_{law.lower()}_amr"
            result[key + "_codecs_alone"] = round(speech_quality.pesq_nb(pcm, ceiling), 3)
            result[key + "_through_relay"] = round(
                speech_quality.pesq_nb(pcm, speech_quality.decode_amr(got)), 3
            )
            result[key + "_frames_lost"] = len(frames) - sum(1 for f in got if f is not None)
            result[key + "_carrier_packets"] = echoed
    finally:
        relay.terminate()
        relay.wait(10)
    return result


async def _round_trip(
    ng_port: int, frames: list[bytes], law: str, interval_s: float
) -> tuple[list[bytes | None], int]:
    async with NgClient(HOST, ng_port, timeout_s=2.0) as ng:
        for _ in range(50):
            if await ng.ping():
                break
            await asyncio.sleep(0.1)
        return await speech_quality.through_relay(
            ng, frames, law=law, interval_s=interval_s, call_id=f"pesq-{law}"
        )


def run(calls: int, seconds: float) -> dict[str, object]:
    ng_port = _free_port()
    relay = _relay(ng_port)
    try:
        legs = asyncio.run(_setup(ng_port, calls))
        workers = _children(relay.pid)
        assert len(workers) == 1, workers
        with _generator_scheduling():
            result = _load(legs, seconds, workers[0], relay.pid)
        return result | {"calls": calls, "realtime_priority": _REALTIME[0]}
    finally:
        relay.terminate()
        relay.wait(10)


def _load(
    legs: list[tuple[socket.socket, socket.socket, int, int]],
    seconds: float,
    worker: int,
    relay: int,
) -> dict[str, object]:
    amr, pcma = _payloads()
    epoll = select.epoll()
    # fd -> (call, direction it receives): 0 app->carrier (read at the carrier), 1 back.
    readers: dict[int, tuple[socket.socket, int, int]] = {}
    for index, (app, carrier, _, _) in enumerate(legs):
        readers[carrier.fileno()] = (carrier, index, 0)
        readers[app.fileno()] = (app, index, 1)
        epoll.register(carrier.fileno(), select.EPOLLIN)
        epoll.register(app.fileno(), select.EPOLLIN)
    sent: list[list[list[float]]] = [[[], []] for _ in legs]
    first_seq: list[list[int | None]] = [[None, None] for _ in legs]
    latencies: list[float] = []
    received = arrived = 0
    start = time.monotonic() + 0.1
    window = start + WARMUP_S
    end = window + seconds
    cpu_start: float | None = None
    relay_cpu_start = 0.0
    tick = 0
    while True:
        slot_time = start + tick * INTERVAL / SLOTS
        now = time.monotonic()
        if slot_time > end:
            break
        if cpu_start is None and now >= window:
            cpu_start, relay_cpu_start = _cpu_seconds(worker), _cpu_seconds(relay)
        while now < slot_time:
            for fd, _ in epoll.poll(max(0.0, slot_time - now)):
                counted, came = _read(readers[fd], sent, first_seq, latencies, window)
                received, arrived = received + counted, arrived + came
            now = time.monotonic()
        round_, slot = divmod(tick, SLOTS)
        for index in range(slot, len(legs), SLOTS):
            app, carrier, to_app_leg, to_carrier_leg = legs[index]
            ts = round_ * 160
            sent[index][0].append(time.monotonic())
            app.sendto(
                _HEADER.pack(0x80, 102, round_ & 0xFFFF, ts, 0xA000 + index)
                + amr[round_ % len(amr)],
                (HOST, to_app_leg),
            )
            sent[index][1].append(time.monotonic())
            carrier.sendto(
                _HEADER.pack(0x80, 8, round_ & 0xFFFF, ts, 0xC000 + index) + pcma,
                (HOST, to_carrier_leg),
            )
        tick += 1
    # What is still in flight arrives within this.
    drain_until = time.monotonic() + 0.2
    while (now := time.monotonic()) < drain_until:
        for fd, _ in epoll.poll(drain_until - now):
            counted, came = _read(readers[fd], sent, first_seq, latencies, window)
            received, arrived = received + counted, arrived + came
    cpu = _cpu_seconds(worker) - (cpu_start or 0.0)
    relay_cpu = _cpu_seconds(relay) - relay_cpu_start
    expected = sum(1 for call in sent for d in call for t in d if window <= t)
    latencies.sort()

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    share = cpu / seconds
    return {
        "seconds": seconds,
        "packets_expected": expected,
        "packets_received": received,
        "loss": round(1 - received / max(1, expected), 5),
        "latency_ms_p50": pct(0.5) if latencies else None,
        "latency_ms_p99": pct(0.99) if latencies else None,
        "latency_ms_max": round(1000 * latencies[-1], 2) if latencies else None,
        "worker_core_share": round(share, 3),
        "relay_core_share": round(relay_cpu / seconds, 3),
        # Over what the worker sent while its CPU was measured (one packet out per packet in),
        # whenever it was sent to it: a worker that falls behind still works on older packets.
        "worker_us_per_packet": round(1e6 * cpu / max(1, arrived), 1),
        # From the CPU a packet costs, not from the share of a core the worker was given: a
        # worker that falls behind (a busy machine) still costs the same per packet.
        "calls_per_core": round(1e6 / (cpu / max(1, arrived) * 1e6 * 2 / INTERVAL))
        if arrived and cpu
        else None,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def _read(
    reader: tuple[socket.socket, int, int],
    sent: list[list[list[float]]],
    first_seq: list[list[int | None]],
    latencies: list[float],
    window: float,
) -> tuple[int, int]:
    """Read what waits on one socket; each packet's one-way time if it was sent in the
    window. Returns how many were counted, and how many arrived in the window (whenever sent:
    what the worker made while its CPU was measured)."""
    sock, index, direction = reader
    counted = arrived = 0
    while True:
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            return counted, arrived
        arrival = time.monotonic()
        arrived += arrival >= window
        sequence = _HEADER.unpack_from(data)[2]
        first = first_seq[index][direction]
        if first is None:
            first_seq[index][direction] = first = sequence
        k = (sequence - first) & 0xFFFF
        times = sent[index][direction]
        if k < len(times) and times[k] >= window:
            latencies.append(arrival - times[k])
            counted += 1


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.transcode_bench")
    parser.add_argument("--calls", type=int, nargs="*", default=[50, 100, 150])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--smoke", action="store_true", help="10 calls, 2 s (CI)")
    parser.add_argument("--no-pesq", action="store_true", help="no listening-quality figure")
    parser.add_argument(
        "--realtime", type=int, default=0, metavar="PRIORITY",
        help="the relay SCHED_FIFO at this priority (needs root or CAP_SYS_NICE): its worker "
        "one below, the generator two below, during the loads",
    )  # fmt: skip
    args = parser.parse_args()
    _REALTIME[0] = args.realtime
    if args.smoke:
        args.calls, args.seconds = [10], 2.0
    failed = False
    print(json.dumps(reference(REFERENCE_FRAMES)), flush=True)
    worker_alone = in_process(50 if args.smoke else 300)
    print(json.dumps(worker_alone), flush=True)
    if worker_alone["packets"] != worker_alone["packets_expected"]:
        print(f"worker_in_process: {worker_alone['packets']} packets out", file=sys.stderr)
        failed = True
    if not args.no_pesq:
        # Real time in a full run; four times faster in a smoke run (the relay does not pace).
        quality = pesq(0.005 if args.smoke else 0.02)
        print(json.dumps(quality), flush=True)
        for key, value in quality.items():
            if key.endswith("_through_relay") and float(str(value)) < PESQ_TARGET:
                print(f"{key}: PESQ {value} < {PESQ_TARGET}", file=sys.stderr)
                failed = True
    for calls in args.calls:
        result = run(calls, args.seconds)
        print(json.dumps(result), flush=True)
        failed |= float(str(result["loss"])) > 0.01
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
