"""The relay's per-packet accounting alone, without sockets: compiled (mypyc) vs from source.

`Leg.rtp_from_peer` is what the relay runs for each RTP packet besides the two system calls:
header checks, counters, RFC 3550 sequence/loss/jitter state and the forwarding destination.
It is timed in-process over 50,000 AMR-sized packets (best of 5), once in this process's build
and once in a child with LWORK_INTERPRETED=1, the reference. One JSON line.

    python -m bench.relay_accounting
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time

PACKETS = 50_000
ROUNDS = 5


def measure() -> dict[str, object]:
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
    packets = [head.pack(0x80, 96, i & 0xFFFF, i * 160, 1234) + bytes(160) for i in range(PACKETS)]
    arrivals = [i * 0.02 for i in range(PACKETS)]
    best = float("inf")
    for round_ in range(ROUNDS):
        later = [now + round_ * PACKETS * 0.02 for now in arrivals]  # time only moves on
        began = time.perf_counter()
        for packet, now in zip(packets, later, strict=True):
            a.rtp_from_peer(packet, now)
        best = min(best, (time.perf_counter() - began) / PACKETS)
    assert a.rtp.packets == ROUNDS * PACKETS  # every packet was accounted
    return {"build": compiled.BUILD, "ns_per_packet": round(best * 1e9)}


def main() -> None:
    ours = measure()
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, bench.relay_accounting as m; print(json.dumps(m.measure()))",
        ],
        env={**os.environ, "LWORK_INTERPRETED": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    reference = json.loads(child.stdout)
    ratio = ours["ns_per_packet"] / reference["ns_per_packet"]  # type: ignore[operator]
    print(
        json.dumps(
            {
                "figure": "relay_accounting",
                "build": ours["build"],
                "ns_per_packet": ours["ns_per_packet"],
                "reference": {
                    "build": reference["build"],
                    "ns_per_packet": reference["ns_per_packet"],
                },
                "ratio_to_interpreted": round(ratio, 3),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
