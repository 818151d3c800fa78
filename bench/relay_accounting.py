"""The relay's per-packet accounting alone, without sockets: compiled (mypyc) vs from source.

`Leg.rtp_from_peer` is what the relay runs for each RTP packet besides the two system calls:
header checks, counters, RFC 3550 sequence/loss/jitter state and the forwarding destination.
It is timed in-process over 50,000 AMR-sized packets (best of 5), once in this process's build
and once in a child with LWORK_INTERPRETED=1, the reference. One JSON line.

    python -m bench.relay_accounting [--smoke]

Exits 1, saying why on stderr, when a build did not account every packet or no longer forwards
to the other phone, or the reference child failed. ``--smoke``: 5,000 packets, best of 2, for CI.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import time

from bench._verdict import Verdict

PACKETS = 50_000
ROUNDS = 5


def measure(packets: int = PACKETS, rounds: int = ROUNDS) -> dict[str, object]:
    from lwork.media.relay import compiled
    from lwork.media.relay.session import Leg
    from lwork.media.relay.token_bucket import TokenBucket

    a = Leg(tag="a", rtp_port=30000, relay_ssrc=1, created=0.0, advertised=("127.0.0.1", 4000))
    b = Leg(tag="b", rtp_port=30002, relay_ssrc=2, created=0.0, advertised=("127.0.0.1", 4002))
    a.other, b.other = b, a
    a.rtp_peer, b.rtp_peer = ("127.0.0.1", 4000), ("127.0.0.1", 4002)
    max_pps = float(os.environ.get("BENCH_MAX_PPS", "1000"))  # the default guard; 0: none
    a.flood = TokenBucket(max_pps, 0.0) if max_pps else None
    head = struct.Struct("!BBHII")
    stream = [head.pack(0x80, 96, i & 0xFFFF, i * 160, 1234) + bytes(160) for i in range(packets)]
    arrivals = [i * 0.02 for i in range(packets)]
    best = float("inf")
    for round_ in range(rounds):
        later = [now + round_ * packets * 0.02 for now in arrivals]  # time only moves on
        began = time.perf_counter()
        for packet, now in zip(stream, later, strict=True):
            a.rtp_from_peer(packet, now)
        best = min(best, (time.perf_counter() - began) / packets)
    accounted = a.rtp.packets
    # one more packet, untimed: it must still go to the other phone
    after = head.pack(0x80, 96, packets & 0xFFFF, packets * 160, 1234) + bytes(160)
    destination = a.rtp_from_peer(after, rounds * packets * 0.02)
    return {
        "build": compiled.BUILD,
        "ns_per_packet": round(best * 1e9),
        "packets": rounds * packets,
        "accounted": accounted,
        "forwards_to": list(destination) if destination is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="a few seconds, tiny load (CI)")
    args = parser.parse_args()
    packets, rounds = (5_000, 2) if args.smoke else (PACKETS, ROUNDS)
    verdict = Verdict("relay_accounting")
    ours = measure(packets, rounds)
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, bench.relay_accounting as m; "
            f"print(json.dumps(m.measure({packets}, {rounds})))",
        ],
        env={**os.environ, "LWORK_INTERPRETED": "1"},
        capture_output=True,
        text=True,
    )
    verdict.require(child.returncode == 0, "relay_accounting", f"reference: {child.stderr[-1500:]}")
    verdict.conclude()
    reference = json.loads(child.stdout)
    ratio = ours["ns_per_packet"] / reference["ns_per_packet"]  # type: ignore[operator]
    verdict.emit(
        {
            "figure": "relay_accounting",
            "build": ours["build"],
            "ns_per_packet": ours["ns_per_packet"],
            "packets": ours["packets"],
            "reference": {
                "build": reference["build"],
                "ns_per_packet": reference["ns_per_packet"],
            },
            "ratio_to_interpreted": round(ratio, 3),
        }
    )
    for build in (ours, reference):
        verdict.require(
            build["accounted"] == build["packets"],
            "relay_accounting",
            f"{build['build']} build accounted {build['accounted']} of {build['packets']} packets",
        )
        verdict.require(
            build["forwards_to"] == ["127.0.0.1", 4002],
            "relay_accounting",
            f"{build['build']} build forwards to {build['forwards_to']}, not the other phone",
        )
    verdict.conclude(["relay_accounting"])


if __name__ == "__main__":
    main()
